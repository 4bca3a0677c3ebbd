"""AzLogProfileRetentionEvent: flag log profiles that keep activity logs too briefly.

A log profile with retention enabled deletes exported activity logs after ``retention_days``;
investigations reach back months, so less than ``_min_retention_days`` (a year by default) is too
short. With retention disabled the logs are kept forever, which Azure writes as 0 days: a disabled
retention with any other number of days is flagged too, as the original did. Reads
``ext.retention_enabled`` and ``ext.retention_days`` of the ``log_profile`` records of AzMonitor.

Not mapped to a CIS control: log profiles are retired (30 September 2026); CIS Azure 6.0 has no
retention control for their successor, diagnostic settings.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import LogProfileEvent, Problem, check_number, counted, is_number
from airflow_cloudmarker.contract import CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_log_profile_short_retention",
    title="Azure log profile keeps activity logs for too short a time",
    severity="low",
    resource_type="log_profile",
    risk="Exported activity logs are deleted before an investigation, often months after the fact, needs them.",
    description="{cloud} log profile {reference} does not keep activity logs for at least {min_days} days "
    "({retention}).",
    remediation="Set the retention of log profile {reference} to at least {min_days} days, or disable "
    "retention with 0 days to keep the logs forever.",
    links=(
        "https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log",
        "https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",
    ),
)


class AzLogProfileRetentionEvent(LogProfileEvent):
    """Emit a ``log_profile_retention_event`` for a log profile whose retention is shorter than the minimum.

    Params:
        _min_retention_days: the shortest acceptable retention, in days (default 365).
        severity: severity of the finding (default: the check's, ``low``).

    Example config::

        plugins:
          azlogprofileretentionevent:
            params:
              _min_retention_days: 730
    """

    CHECK = CHECK
    EVENT_TYPE = "log_profile_retention_event"

    def __init__(self, _min_retention_days: int = 365, severity: str | None = None):
        super().__init__(severity)
        self._min_days = check_number("AzLogProfileRetentionEvent", "_min_retention_days", _min_retention_days)

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when enabled retention is below the minimum, or disabled retention is not 0 days."""
        enabled, days = ext.get("retention_enabled"), ext.get("retention_days")
        if not isinstance(enabled, bool) or not is_number(days):
            return self.ignored(com, "ext.retention_enabled is not true/false or ext.retention_days not a number")
        if enabled and days >= self._min_days or not enabled and days == 0:
            return []
        retention = f"retention {'enabled' if enabled else 'disabled'}, {counted(days, 'day')}"
        return [Problem({"retention": retention, "min_days": f"{self._min_days:g}"})]

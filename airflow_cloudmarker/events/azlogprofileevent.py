"""AzLogProfileEvent: flag subscriptions that have no Azure Monitor log profile.

A log profile exported a subscription's activity log (who created, changed or deleted what) to a
storage account or an event hub; without one the log is kept for 90 days only. AzMonitor emits one
``log_profile_missing`` record for a subscription without a profile, which this event reports.

Log profiles are retired on 30 September 2026 in favour of the subscription's diagnostic settings,
so no current CIS control names them (the successor controls, CIS Azure 6.0 6.1.1.1 and 6.1.1.2,
check diagnostic settings, which the diagnostic-settings event judges): ``controls`` is empty.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, Problem
from airflow_cloudmarker.contract import CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_log_profile_missing",
    title="Azure subscription has no activity log profile",
    severity="medium",
    resource_type="subscription",
    risk="Without an export the subscription's activity log is kept for 90 days only: older changes to its "
    "resources cannot be investigated.",
    description="{cloud} subscription {reference} has no log profile, so its activity log is not exported.",
    remediation="Export the activity log of subscription {reference}: with a diagnostic setting for the "
    "subscription (log profiles are retired on 30 September 2026), or with a log profile until then.",
    links=(
        "https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log",
        "https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",
    ),
)


class AzLogProfileEvent(AzureEvent):
    """Emit a ``log_profile_event`` for a ``log_profile_missing`` record (a subscription without a profile)."""

    CHECK = CHECK
    EVENT_TYPE = "log_profile_event"
    EXT_TYPE = "log_profile_missing"

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """The record itself is the problem: the subscription has no log profile."""
        return [Problem()]

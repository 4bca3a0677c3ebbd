"""AzLogProfileMissingCategoryEvent: flag log profiles that do not export every activity category.

A log profile exports the activity log events of the categories it lists; one that leaves out
Write, Delete or Action loses the record of those operations. Reads ``raw.categories`` of the
``log_profile`` records of AzMonitor (top-level or under ``properties``, both shapes).

Not mapped to a CIS control: log profiles are retired (30 September 2026), and the successor
control (CIS Azure 6.0 6.1.1.2, the diagnostic setting captures appropriate categories) checks
diagnostic settings, not log profiles.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import LogProfileEvent, Problem, friendly_list, string_list
from airflow_cloudmarker.azure.normalize import field
from airflow_cloudmarker.contract import CheckMetadata

#: The activity log categories a log profile must export, in the order texts name them.
REQUIRED_CATEGORIES = ("Write", "Delete", "Action")

CHECK = CheckMetadata(
    check_id="azure_log_profile_missing_categories",
    title="Azure log profile does not export every activity log category",
    severity="low",
    resource_type="log_profile",
    risk="Activity log events of the missing categories (writes, deletes or actions on resources) are not "
    "exported, so they are lost after 90 days.",
    description="{cloud} log profile {reference} does not include the categories {categories}.",
    remediation="Add the categories {categories} to log profile {reference}, or replace the profile with "
    "a diagnostic setting that exports the Administrative category (log profiles are retired on "
    "30 September 2026).",
    links=(
        "https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log",
        "https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",
    ),
)


class AzLogProfileMissingCategoryEvent(LogProfileEvent):
    """Emit a ``log_profile_missing_category_event`` for a log profile missing Write, Delete or Action.

    The event's ``com.finding_key`` is the missing categories (``Delete,Action``): a change in which
    categories are missing is a different finding.
    """

    CHECK = CHECK
    EVENT_TYPE = "log_profile_missing_category_event"

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem naming the required categories ``raw.categories`` lacks."""
        raw = record.get("raw")
        if raw is None:
            return []
        categories = string_list(field(raw, "categories"))
        if categories is None:
            return self.ignored(com, "raw.categories is not a list")
        missing = [c for c in REQUIRED_CATEGORIES if c not in categories]
        if not missing:
            return []
        return [Problem({"categories": friendly_list(missing)}, key=",".join(missing))]

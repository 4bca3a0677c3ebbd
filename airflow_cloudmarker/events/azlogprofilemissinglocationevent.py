"""AzLogProfileMissingLocationEvent: flag log profiles that do not cover every location.

A log profile exports the activity log events of the locations (regions) it lists; events of the
subscription's other locations, and of ``global`` (subscription-wide operations), are not
exported. Reads ``ext.subscription_locations`` and ``ext.locations`` of the ``log_profile``
records of AzMonitor; the event adds ``ext.missing_locations``.

Not mapped to a CIS control: log profiles are retired (30 September 2026), and diagnostic
settings, their successor, have no locations (they cover the whole subscription).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import LogProfileEvent, Problem, friendly_list, string_list
from airflow_cloudmarker.contract import CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_log_profile_missing_locations",
    title="Azure log profile does not cover every location of the subscription",
    severity="low",
    resource_type="log_profile",
    risk="Activity log events of the missing locations are not exported, so they are lost after 90 days.",
    description="{cloud} log profile {reference} does not include the locations {locations}.",
    remediation="Add the locations {locations} to log profile {reference}, or replace the profile with a "
    "diagnostic setting for the subscription, which covers every location (log profiles are retired "
    "on 30 September 2026).",
    links=(
        "https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log",
        "https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",
    ),
)


class AzLogProfileMissingLocationEvent(LogProfileEvent):
    """Emit a ``log_profile_missing_location_event`` for a log profile missing a location or ``global``.

    The event's ``ext.missing_locations`` lists them (sorted), and so does its ``com.finding_key``.
    """

    CHECK = CHECK
    EVENT_TYPE = "log_profile_missing_location_event"

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem naming the subscription's locations (and ``global``) the profile does not list."""
        wanted, listed = string_list(ext.get("subscription_locations")), string_list(ext.get("locations"))
        if wanted is None or listed is None:
            return self.ignored(com, "ext.subscription_locations or ext.locations is not a list")
        missing = sorted({*wanted, "global"} - set(listed))
        if not missing:
            return []
        return [
            Problem({"locations": friendly_list(missing)}, key=",".join(missing), ext={"missing_locations": missing})
        ]

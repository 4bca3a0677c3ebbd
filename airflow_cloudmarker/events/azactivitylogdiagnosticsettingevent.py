"""AzActivityLogDiagnosticSettingEvent: flag subscriptions whose activity log is not exported, or only in part.

The successor of the original's log-profile events: log profiles retire on 30 September 2026 and
diagnostic settings replace them. It reads AzMonitor's ``activity_log_diagnostic_settings`` records
(one per subscription) and makes two checks, one event at most per subscription:

- no diagnostic setting exports the activity log (CIS Azure 6.0 6.1.1.1);
- the activity log is exported, but without some required categories (6.1.1.2); the finding key is
  the missing categories, so exporting one more category resolves the finding and opens a new one
  for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow_cloudmarker import util
from airflow_cloudmarker.azure.activitylog import CIS_CATEGORIES, canonical
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

SOURCE_TYPE = "activity_log_diagnostic_settings"
_LINKS = (
    "https://learn.microsoft.com/azure/azure-monitor/essentials/activity-log",
    "https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",
)

NOT_EXPORTED_CHECK = CheckMetadata(
    check_id="azure_activity_log_not_exported",
    title="Azure subscription activity log is not exported by a diagnostic setting",
    severity="medium",
    resource_type="subscription",
    risk="The activity log (who changed what, when, from where) is kept only 90 days and only in the "
    "portal: an intrusion noticed later, or a deleted resource, leaves no trail to investigate.",
    description="Azure subscription {reference} has no diagnostic setting that exports its activity log.",
    remediation="Create a diagnostic setting for the activity log of Azure subscription {reference} that sends "
    "at least the {categories} categories to a Log Analytics workspace, a storage account or an event hub.",
    links=_LINKS,
    controls={CIS_AZURE: ["6.1.1.1"]},
)
MISSING_CATEGORIES_CHECK = CheckMetadata(
    check_id="azure_activity_log_missing_categories",
    title="Azure subscription activity log export lacks required categories",
    severity="low",
    resource_type="subscription",
    risk="The categories left out (for example Security or Policy alerts) are not kept: their events cannot "
    "be searched, alerted on or investigated after 90 days.",
    description="The activity log of Azure subscription {reference} is exported without the {missing} categories.",
    remediation="Enable the {missing} categories in a diagnostic setting of Azure subscription {reference} "
    "that has a destination.",
    links=_LINKS,
    controls={CIS_AZURE: ["6.1.1.2"]},
)


def _check_categories(categories: Any) -> tuple[str, ...]:
    """The required categories as Azure spells them; raises one clear error for anything else."""
    if isinstance(categories, (str, bytes)) or not isinstance(categories, Iterable):
        raise ValueError(
            "AzActivityLogDiagnosticSettingEvent param categories must be a list of activity log categories "
            f"such as [Administrative, Alert, Policy, Security], not {categories!r}"
        )
    checked = []
    for category in categories:
        if not isinstance(category, str) or not category.strip():
            raise ValueError(
                f"AzActivityLogDiagnosticSettingEvent param categories: {category!r} is not a category name; "
                "use names such as Administrative or Security"
            )
        if canonical(category) not in checked:
            checked.append(canonical(category))
    if not checked:
        raise ValueError(
            "AzActivityLogDiagnosticSettingEvent param categories is empty: list the categories an export must "
            "have, or leave it out for the CIS set (Administrative, Alert, Policy, Security)"
        )
    return tuple(checked)


def _names(names: list[str]) -> str:
    """``Alert``, ``Alert and Policy``, ``Alert, Policy and Security``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class AzActivityLogDiagnosticSettingEvent:
    """Emit an event for a subscription whose activity log is not exported, or exported without required categories.

    Params:
        categories: the activity log categories an export must include (default CIS Azure 6.0
            6.1.1.2's: Administrative, Alert, Policy, Security).
        severity: severity of the findings (default: each check's, ``medium`` for no export,
            ``low`` for missing categories).

    Example config::

        plugins:
          azactivitylogdiagnosticsettingevent:
            params:
              categories: [Administrative, Alert, Policy, Security, ServiceHealth]
    """

    CHECK = (NOT_EXPORTED_CHECK, MISSING_CATEGORIES_CHECK)

    def __init__(self, categories: Sequence[str] | None = CIS_CATEGORIES, severity: str | None = None):
        self._categories = _check_categories(CIS_CATEGORIES if categories is None else categories)
        self._severity = None if severity is None else util.check_severity(type(self).__name__, severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield at most one event for an ``activity_log_diagnostic_settings`` record; ignore anything else."""
        ext = record.get("ext") if isinstance(record, dict) else None
        com = record.get("com") if isinstance(record, dict) else None
        if not isinstance(ext, dict) or ext.get("record_type") != SOURCE_TYPE:
            return
        exported, enabled = ext.get("exported"), ext.get("enabled_categories")
        if not isinstance(exported, bool) or not isinstance(enabled, list):
            return
        com = com if isinstance(com, dict) else {}
        reference = str(com.get("reference") or f"/subscriptions/{ext.get('subscription_id') or ''}")
        if not exported:
            yield self._event(NOT_EXPORTED_CHECK, "activity_log_not_exported_event", ext, reference, None)
            return
        have = {canonical(c) for c in enabled if isinstance(c, str)}
        missing = [c for c in self._categories if c not in have]
        if missing:
            yield self._event(
                MISSING_CATEGORIES_CHECK, "activity_log_missing_categories_event", ext, reference, missing
            )

    def _event(
        self, check: CheckMetadata, event_type: str, ext: dict, reference: str, missing: list[str] | None
    ) -> dict:
        """The event; ``missing`` is None when nothing is exported (every required category is then missing)."""
        com: dict[str, Any] = {"cloud_type": "azure", "record_type": event_type, "reference": reference}
        if missing is None:
            missing = list(self._categories)
        else:
            com["finding_key"] = ",".join(missing)
        values = {
            "reference": reference,
            "categories": _names(list(self._categories)),
            "missing": _names(missing),
        }
        return {
            "ext": util.merge_dicts(ext, {"record_type": event_type, "missing_categories": missing}),
            "com": {**com, **check.event_com(values, self._severity)},
        }

    def done(self) -> None:
        """Nothing to clean up."""

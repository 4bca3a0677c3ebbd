"""Pure reading of a subscription's diagnostic settings: is the activity log exported, with which categories.

No SDK here: AzMonitor builds its ``activity_log_diagnostic_settings`` records with it and
AzActivityLogDiagnosticSettingEvent shares its category names. A setting is read in the REST shape
(``{"name", "properties": {"storageAccountId", "workspaceId", "eventHubAuthorizationRuleId",
"marketplacePartnerId", "logs": [{"category", "categoryGroup", "enabled"}]}}``).
"""

from __future__ import annotations

from typing import Any

#: The activity log categories CIS Azure 6.0 6.1.1.2 asks a diagnostic setting to capture
CIS_CATEGORIES = ("Administrative", "Alert", "Policy", "Security")
#: Every activity log category (what the ``allLogs`` category group enables)
ACTIVITY_LOG_CATEGORIES = (
    "Administrative",
    "Security",
    "ServiceHealth",
    "Alert",
    "Recommendation",
    "Policy",
    "Autoscale",
    "ResourceHealth",
)
#: Destination property of a diagnostic setting -> the kind of destination it names
DESTINATIONS = {
    "storageAccountId": "storage_account",
    "workspaceId": "log_analytics_workspace",
    "eventHubAuthorizationRuleId": "event_hub",
    "marketplacePartnerId": "partner_solution",
}
_CANONICAL = {name.lower(): name for name in ACTIVITY_LOG_CATEGORIES}


def canonical(category: Any) -> str:
    """A category as Azure spells it (``administrative`` -> ``Administrative``); unknown names unchanged."""
    text = str(category).strip()
    return _CANONICAL.get(text.lower(), text)


def enabled_categories(setting: dict) -> set[str]:
    """The categories a setting has enabled (the ``allLogs`` group enables every category)."""
    props = setting.get("properties") if isinstance(setting.get("properties"), dict) else {}
    logs = props.get("logs") if isinstance(props.get("logs"), list) else []
    enabled: set[str] = set()
    for log in logs:
        if not isinstance(log, dict) or log.get("enabled") is not True:
            continue
        if str(log.get("categoryGroup") or "").lower() == "alllogs":
            enabled.update(ACTIVITY_LOG_CATEGORIES)
        elif log.get("category"):
            enabled.add(canonical(log["category"]))
    return enabled


def destinations(setting: dict) -> list[dict]:
    """Where a setting sends the log: ``[{"setting", "type", "id"}]`` (an event hub's id is its authorization rule)."""
    props = setting.get("properties") if isinstance(setting.get("properties"), dict) else {}
    return [
        {"setting": setting.get("name"), "type": kind, "id": props[key]}
        for key, kind in DESTINATIONS.items()
        if props.get(key)
    ]


def summary(settings: list[dict], required: tuple[str, ...] = CIS_CATEGORIES) -> dict[str, Any]:
    """The ``ext`` fields of an ``activity_log_diagnostic_settings`` record.

    ``exported``: some setting has a destination and an enabled category. ``enabled_categories``:
    the categories any such setting exports (sorted); a setting without a destination exports
    nothing. ``missing_categories``: those of ``required`` not exported. ``destinations``: every
    destination of an exporting setting.
    """
    exported: set[str] = set()
    targets: list[dict] = []
    for setting in settings:
        if not isinstance(setting, dict):
            continue
        categories, where = enabled_categories(setting), destinations(setting)
        if categories and where:
            exported |= categories
            targets += where
    return {
        "exported": bool(exported),
        "enabled_categories": sorted(exported),
        "missing_categories": [c for c in required if c not in exported],
        "destinations": targets,
    }

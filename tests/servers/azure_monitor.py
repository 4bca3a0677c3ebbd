"""Azure Monitor for a FakeAzure: log profiles, locations and the activity log's diagnostic settings.

Served as ARM data (``FakeAzure.add_list``), in the REST shapes:

- ``/subscriptions/{id}/providers/Microsoft.Insights/logprofiles`` (api 2016-03-01): subscription 0 has a
  full profile (every location, the three categories, 365 days kept), subscription 1 a partial one
  (two locations, only ``Write``, no ``retentionPolicy`` at all), any other subscription none;
- ``/subscriptions/{id}/locations``: three regions per subscription;
- ``/subscriptions/{id}/providers/Microsoft.Insights/diagnosticSettings`` (api 2021-05-01-preview): subscription
  0 exports the activity log to a Log Analytics workspace with every CIS category (one setting) and to a
  storage account with one more (a second setting), subscription 1 exports to an event hub without
  ``Alert`` and ``Policy`` (and ``Security`` is listed but disabled), any other subscription has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.azure import FakeAzure

LOG_PROFILES = "providers/Microsoft.Insights/logprofiles"
DIAGNOSTIC_SETTINGS = "providers/Microsoft.Insights/diagnosticSettings"
STORAGE = "Microsoft.Storage/storageAccounts"
REGIONS = ("eastus", "westeurope", "japaneast")


def location(sid: str, name: str) -> dict:
    return {
        "id": f"/subscriptions/{sid}/locations/{name}",
        "name": name,
        "displayName": name.title(),
        "regionalDisplayName": name.title(),
        "type": "Region",
        "metadata": {"regionType": "Physical", "regionCategory": "Recommended"},
    }


def log_profile(sid: str, locations: list[str], categories: list[str], retention: dict | None) -> dict:
    props: dict[str, Any] = {
        "storageAccountId": f"/subscriptions/{sid}/resourceGroups/rg-logs/providers/{STORAGE}/logs",
        "serviceBusRuleId": None,
        "locations": locations,
        "categories": categories,
    }
    if retention is not None:
        props["retentionPolicy"] = retention
    return {
        "id": f"/subscriptions/{sid}/providers/microsoft.insights/logprofiles/default",
        "type": None,
        "name": "default",
        "location": None,
        "kind": None,
        "tags": None,
        "properties": props,
    }


def diagnostic_setting(sid: str, name: str, logs: list[tuple[str, bool]], **destinations: str) -> dict:
    return {
        "id": f"/subscriptions/{sid}/providers/microsoft.insights/diagnosticSettings/{name}",
        "type": "Microsoft.Insights/diagnosticSettings",
        "name": name,
        "properties": {
            "storageAccountId": None,
            "serviceBusRuleId": None,
            "workspaceId": None,
            "eventHubAuthorizationRuleId": None,
            "eventHubName": None,
            **destinations,
            "logs": [{"category": category, "enabled": enabled} for category, enabled in logs],
        },
    }


def estate(sid: str, index: int) -> tuple[list[dict], list[dict]]:
    """(log profiles, diagnostic settings) of subscription ``index``."""
    rg = f"/subscriptions/{sid}/resourceGroups/rg-logs/providers"
    if index == 0:
        profiles = [
            log_profile(sid, [*REGIONS, "global"], ["Write", "Delete", "Action"], {"enabled": True, "days": 365})
        ]
        settings = [
            diagnostic_setting(
                sid,
                "to-workspace",
                [("Administrative", True), ("Security", True), ("Alert", True), ("Policy", True), ("Autoscale", False)],
                workspaceId=f"{rg}/Microsoft.OperationalInsights/workspaces/central",
            ),
            diagnostic_setting(
                sid,
                "to-storage",
                [("ServiceHealth", True)],
                storageAccountId=f"{rg}/Microsoft.Storage/storageAccounts/archive",
            ),
        ]
    elif index == 1:
        profiles = [log_profile(sid, ["eastus", "global"], ["Write"], None)]
        settings = [
            diagnostic_setting(
                sid,
                "to-eventhub",
                [("Administrative", True), ("Security", False), ("ServiceHealth", True)],
                eventHubAuthorizationRuleId=f"{rg}/Microsoft.EventHub/namespaces/ns/authorizationRules/send",
                eventHubName="activity",
            )
        ]
    else:
        profiles, settings = [], []
    return profiles, settings


def populate(az: FakeAzure) -> None:
    """Give every subscription of ``az`` its log profiles, locations and diagnostic settings (see above)."""
    for index, sid in enumerate(az.subscription_ids()):
        profiles, settings = estate(sid, index)
        az.add_list(f"/subscriptions/{sid}/{LOG_PROFILES}", profiles)
        az.add_list(f"/subscriptions/{sid}/locations", [location(sid, name) for name in REGIONS])
        az.add_list(f"/subscriptions/{sid}/{DIAGNOSTIC_SETTINGS}", settings)

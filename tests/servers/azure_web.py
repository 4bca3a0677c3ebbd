"""App Service sites for ``FakeAzure``: per subscription, a healthy and an unhealthy web app and a function app.

The site list is served where ``web_apps.list()`` calls (``/subscriptions/{id}/providers/Microsoft.Web/sites``),
without ``siteConfig`` as Azure lists sites; each site's configuration where ``web_apps.get_configuration``
calls (``.../sites/{name}/config/web``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.azure import FakeAzure

SITE_TYPE = "Microsoft.Web/sites"

#: name suffix -> (kind, site properties, configuration properties)
SITES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "good": (
        "app",
        {"httpsOnly": True, "clientCertEnabled": True, "clientCertMode": "Required"},
        {"http20Enabled": True, "minTlsVersion": "1.2", "ftpsState": "Disabled"},
    ),
    "bad": (
        "app,linux",
        {"httpsOnly": False, "clientCertEnabled": False},
        {"http20Enabled": False, "minTlsVersion": "1.0", "ftpsState": "AllAllowed"},
    ),
    "func": (
        "functionapp,linux",
        {"httpsOnly": True},  # clientCertEnabled left out, as Azure does for a site that never set it
        {"minTlsVersion": "1.1"},  # http20Enabled left out
    ),
}


def site(sid: str, rg: str, name: str, kind: str, properties: dict[str, Any]) -> dict:
    """One site as Web Apps - List returns it."""
    return {
        "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/{SITE_TYPE}/{name}",
        "name": name,
        "type": SITE_TYPE,
        "kind": kind,
        "location": "East US",
        "tags": {"env": "test"},
        "properties": {
            "state": "Running",
            "hostNames": [f"{name}.azurewebsites.net"],
            "enabled": True,
            "serverFarmId": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.Web/serverfarms/plan",
            "siteConfig": None,
            **properties,
        },
    }


def configuration(site_id: str, properties: dict[str, Any]) -> dict:
    """A site's configuration as Web Apps - Get Configuration returns it."""
    return {
        "id": f"{site_id}/config/web",
        "name": "web",
        "type": "Microsoft.Web/sites/config",
        "location": "East US",
        "properties": {"numberOfWorkers": 1, "alwaysOn": False, "scmType": "None", **properties},
    }


def populate(az: FakeAzure) -> None:
    """Serve three sites and their configurations in every subscription of ``az``."""
    for index, sid in enumerate(az.subscription_ids()):
        rg = f"rg-{index}"
        sites = [(site(sid, rg, f"app-{index}-{s}", kind, props), cfg) for s, (kind, props, cfg) in SITES.items()]
        az.add_list(f"/subscriptions/{sid}/providers/{SITE_TYPE}", [body for body, _ in sites])
        for body, cfg in sites:
            az.add_object(f"{body['id']}/config/web", configuration(body["id"], cfg))

"""Storage accounts for ``FakeAzure``: per subscription, every network and secure-transfer setting.

Served at the path ``storage_accounts.list()`` calls
(``/subscriptions/{id}/providers/Microsoft.Storage/storageAccounts``), after the built-in estate's
account (``st{index}``: HTTPS only, no ``networkAcls``, i.e. Azure's default network rule set), and
each account also at its own path, as Storage Accounts - Get Properties returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.azure import FakeAzure

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"

#: name suffix -> (supportsHttpsTrafficOnly, networkAcls.defaultAction, networkAcls.bypass)
ACCOUNTS = {
    "locked": (True, "Deny", "AzureServices"),  # healthy on every check
    "open": (False, "Allow", "None"),  # unhealthy on every check
    "logs": (True, "Deny", "AzureServices, Logging, Metrics"),  # trusted services allowed among others
    "nosvc": (True, "Deny", "Logging, Metrics"),  # bypass without AzureServices
}


def account(sid: str, rg: str, name: str, https_only: bool, action: str, bypass: str, **properties: Any) -> dict:
    """One storage account as Storage Accounts - List returns it."""
    base = f"https://{name}"
    return {
        "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/{ACCOUNT_TYPE}/{name}",
        "name": name,
        "type": ACCOUNT_TYPE,
        "location": "eastus",
        "tags": {"env": "test"},
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "properties": {
            "provisioningState": "Succeeded",
            "creationTime": "2026-01-01T00:00:00.0000000Z",
            "primaryLocation": "eastus",
            "statusOfPrimary": "available",
            "primaryEndpoints": {"blob": f"{base}.blob.core.windows.net/", "file": f"{base}.file.core.windows.net/"},
            "accessTier": "Hot",
            "supportsHttpsTrafficOnly": https_only,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": False,
            "encryption": {
                "keySource": "Microsoft.Storage",
                "services": {"blob": {"enabled": True, "keyType": "Account"}},
            },
            "networkAcls": {"defaultAction": action, "bypass": bypass, "ipRules": [], "virtualNetworkRules": []},
            **properties,
        },
    }


def accounts(sid: str, index: int) -> list[dict]:
    """The added accounts of one subscription (resource group ``rg-{index}``, as the built-in estate)."""
    rg = f"rg-{index}"
    return [account(sid, rg, f"st{index}{suffix}", *settings) for suffix, settings in ACCOUNTS.items()]


def populate(az: FakeAzure) -> None:
    """Serve four more storage accounts in every subscription of ``az``, listed and one by one."""
    for index, sid in enumerate(az.subscription_ids()):
        items = accounts(sid, index)
        az.add_list(f"/subscriptions/{sid}/providers/{ACCOUNT_TYPE}", items)
        for item in items:
            az.add_object(item["id"], item)

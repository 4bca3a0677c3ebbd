"""Managed disks for ``FakeAzure``: per subscription, disks attached and not, with each encryption kind.

Served at the path ``disks.list()`` calls (``/subscriptions/{id}/providers/Microsoft.Compute/disks``),
in the ARM JSON shape of Disks - List (camelCase, ``managedBy`` beside ``properties``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.azure import FakeAzure

DISK_TYPE = "Microsoft.Compute/disks"


def disk(sid: str, rg: str, name: str, managed_by: str | None, **properties: Any) -> dict:
    """One disk as Disks - List returns it (``managed_by=None`` leaves the key out)."""
    body: dict[str, Any] = {
        "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/{DISK_TYPE}/{name}",
        "name": name,
        "type": DISK_TYPE,
        "location": "eastus",
        "tags": {"env": "test"},
        "sku": {"name": "Premium_LRS", "tier": "Premium"},
        "properties": {
            "osType": "Linux",
            "creationData": {"createOption": "Empty"},
            "diskSizeGB": 64,
            "diskState": "Attached" if managed_by else "Unattached",
            "provisioningState": "Succeeded",
            "timeCreated": "2026-01-01T00:00:00.0000000+00:00",
            **properties,
        },
    }
    if managed_by is not None:
        body["managedBy"] = managed_by
    return body


def disks(sid: str, index: int) -> list[dict]:
    """The disks of one subscription (resource group ``rg-{index}``, as the built-in estate)."""
    rg = f"rg-{index}"
    vm = f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/vm-{index}-0"
    return [
        disk(
            sid,
            rg,
            f"disk-{index}-attached",
            vm,
            encryption={"type": "EncryptionAtRestWithPlatformKey"},
            networkAccessPolicy="DenyAll",
        ),
        disk(
            sid,
            rg,
            f"disk-{index}-spare",
            None,
            encryption={
                "type": "EncryptionAtRestWithCustomerKey",
                "diskEncryptionSetId": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/"
                f"Microsoft.Compute/diskEncryptionSets/des-{index}",
            },
            networkAccessPolicy="AllowPrivate",
            diskAccessId=f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.Compute/diskAccesses/da-{index}",
        ),
        # managedBy present but empty, no encryption block, open to any network: unattached
        disk(sid, rg, f"disk-{index}-orphan", "", networkAccessPolicy="AllowAll"),
    ]


def populate(az: FakeAzure) -> None:
    """Serve three disks in every subscription of ``az``."""
    for index, sid in enumerate(az.subscription_ids()):
        az.add_list(f"/subscriptions/{sid}/providers/{DISK_TYPE}", disks(sid, index))

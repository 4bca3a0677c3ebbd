"""AzVMDataDiskEncryptionEvent: flag each unencrypted data disk of an Azure VM (AzVM records only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.azure.normalize import field
from airflow_cloudmarker.contract import CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Not mapped to a CIS control, for the reason azvmosdiskencryptionevent gives.
CHECK = CheckMetadata(
    check_id="azure_vm_data_disk_unencrypted",
    title="Azure VM data disk is not encrypted with Azure Disk Encryption",
    severity="medium",
    resource_type="virtual_machine",
    risk="Whoever gets a copy of the disk (a snapshot, an export, a leaked VHD) can read the data on it.",
    description="Azure virtual machine {vm_name} has unencrypted data disk {disk_name}.",
    remediation="Encrypt data disk {disk_name} of Azure virtual machine {vm_name} with Azure Disk "
    "Encryption (or encryption at host), so its data cannot be read from a copy of the disk.",
    links=(
        "https://learn.microsoft.com/azure/virtual-machines/disk-encryption-overview",
        "https://learn.microsoft.com/azure/virtual-machines/disk-encryption",
    ),
)


def _encrypted(disk: dict) -> bool:
    """True when one of the disk's ``encryption_settings`` entries is enabled (Azure Disk Encryption)."""
    settings = field(disk, "encryption_settings")
    return isinstance(settings, list) and any(isinstance(s, dict) and s.get("enabled") is True for s in settings)


def reported_data_disks(vm: dict) -> list[tuple[str, bool]] | None:
    """Return [(data disk name, encrypted), ...] as the VM's instance view reports them.

    Like the original Cloudmarker, every disk of ``instance_view.disks`` other than the OS disk is a
    data disk, and a disk without an enabled ``encryption_settings`` entry is unencrypted. Only the
    instance view knows a disk's encryption: a data disk that the storage profile lists but the view
    does not (a deallocated VM reports no disk statuses) is unknown and not returned. ``None`` when
    the record has no instance view or no OS disk name to tell the OS disk apart.
    """
    view = field(vm, "instance_view")
    os_disk = field(field(vm, "storage_profile"), "os_disk")
    os_name = os_disk.get("name") if isinstance(os_disk, dict) else None
    if not isinstance(view, dict) or not isinstance(os_name, str):
        return None
    disks = field(view, "disks")
    disks = disks if isinstance(disks, list) else []
    seen: dict[str, bool] = {}
    for disk in disks:
        name = disk.get("name") if isinstance(disk, dict) else None
        if isinstance(name, str) and name and name.lower() != os_name.lower() and name not in seen:
            seen[name] = _encrypted(disk)
    return list(seen.items())


class AzVMDataDiskEncryptionEvent:
    """Emit one ``vm_data_disk_encryption_event`` per unencrypted data disk of a ``vm_instance_view`` record.

    The data disks judged are those the VM's instance view reports (see :func:`reported_data_disks`).

    Params:
        severity: severity of the findings (default: the check's, ``medium``).

    Example config::

        audits:
          myazaudit:
            clouds: [myazvm]
            events: [azdatadiskencryptionevent]
    """

    CHECK = CHECK

    def __init__(self, severity: str = CHECK.severity):
        self._severity = util.check_severity("AzVMDataDiskEncryptionEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield an event per unencrypted data disk; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "vm_instance_view" or not isinstance(raw, dict):
            return
        data_disks = reported_data_disks(raw)
        if not data_disks:
            return
        com = com if isinstance(com, dict) else {}
        reference = str(com.get("reference") or raw.get("id") or "")
        vm_name = raw.get("name") or reference
        for disk_name, encrypted in data_disks:
            if not encrypted:
                yield self._event(ext, reference, vm_name, disk_name)

    def _event(self, ext: dict, reference: str, vm_name: str, disk_name: str) -> dict:
        return {
            "ext": util.merge_dicts(ext, {"record_type": "vm_data_disk_encryption_event", "disk_name": disk_name}),
            "com": {
                "cloud_type": "azure",
                "record_type": "vm_data_disk_encryption_event",
                "reference": reference,
                "finding_key": disk_name,
                **CHECK.event_com({"vm_name": vm_name, "disk_name": disk_name}, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

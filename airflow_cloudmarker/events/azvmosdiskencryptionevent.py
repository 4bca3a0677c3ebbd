"""AzVMOSDiskEncryptionEvent: flag Azure VMs whose OS disk is not encrypted (AzVM records only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.azure.normalize import disk_encryption
from airflow_cloudmarker.contract import CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Not mapped to a CIS control: CIS Azure Foundations 6.0 has no VM disk controls, and the nearest
#: older one (3.0 8.3, disks encrypted with a customer-managed key) checks server-side encryption
#: keys, which this check (Azure Disk Encryption in the VM's instance view) does not look at.
CHECK = CheckMetadata(
    check_id="azure_vm_os_disk_unencrypted",
    title="Azure VM OS disk is not encrypted with Azure Disk Encryption",
    severity="medium",
    resource_type="virtual_machine",
    risk="Whoever gets a copy of the disk (a snapshot, an export, a leaked VHD) can read the operating "
    "system's files, credentials and secrets included.",
    description="Azure virtual machine {vm_name} has unencrypted {disk}.",
    remediation="Encrypt {disk} of Azure virtual machine {vm_name} with Azure Disk Encryption "
    "(or encryption at host), so its data cannot be read from a copy of the disk.",
    links=(
        "https://learn.microsoft.com/azure/virtual-machines/disk-encryption-overview",
        "https://learn.microsoft.com/azure/virtual-machines/disk-encryption",
    ),
)


class AzVMOSDiskEncryptionEvent:
    """Emit a ``vm_os_disk_encryption_event`` for a ``vm_instance_view`` record whose OS disk is unencrypted."""

    CHECK = CHECK

    def __init__(self, severity: str = CHECK.severity):
        self._severity = util.check_severity("AzVMOSDiskEncryptionEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event when the VM's OS disk is not encrypted; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "vm_instance_view":
            return
        if ext.get("os_disk_encrypted") is not False or not isinstance(raw, dict):
            return
        com = com if isinstance(com, dict) else {}
        try:
            disk_name, _, _ = disk_encryption(raw)
        except (AttributeError, TypeError):
            disk_name = None
        reference = str(com.get("reference") or raw.get("id") or "")
        vm_name = raw.get("name") or reference
        disk_text = f"OS disk {disk_name}" if disk_name else "its OS disk"
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "vm_os_disk_encryption_event"}),
            "com": {
                "cloud_type": "azure",
                "record_type": "vm_os_disk_encryption_event",
                "reference": reference,
                "finding_key": disk_name or "os_disk",
                **CHECK.event_com({"vm_name": vm_name, "disk": disk_text}, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

"""AzVMOSDiskEncryptionEvent: flag Azure VMs whose OS disk is not encrypted (AzVM records only)."""

from __future__ import annotations

from collections.abc import Iterator

from airflow_cloudmarker import util
from airflow_cloudmarker.azure.normalize import disk_encryption


class AzVMOSDiskEncryptionEvent:
    """Emit a ``vm_os_disk_encryption_event`` for a ``vm_instance_view`` record whose OS disk is unencrypted.

    Params:
        severity: severity of the finding (default ``medium``).

    Example config::

        audits:
          myazaudit:
            clouds: [myazvm]
            events: [azosdiskencryptionevent]
    """

    def __init__(self, severity: str = "medium"):
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
                "severity": self._severity,
                "finding_key": disk_name or "os_disk",
                "description": f"Azure virtual machine {vm_name} has unencrypted {disk_text}.",
                "recommendation": (
                    f"Encrypt {disk_text} of Azure virtual machine {vm_name} with Azure Disk Encryption "
                    "(or encryption at host), so its data cannot be read from a copy of the disk."
                ),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

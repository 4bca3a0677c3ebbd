"""AzVMDataDiskEncryptionEvent: flag each unencrypted data disk of an Azure VM (AzVM records only)."""

from __future__ import annotations

from collections.abc import Iterator

from airflow_cloudmarker import util
from airflow_cloudmarker.clouds._aznormalize import disk_encryption


class AzVMDataDiskEncryptionEvent:
    """Emit one ``vm_data_disk_encryption_event`` per unencrypted data disk of a ``vm_instance_view`` record.

    Params:
        severity: severity of the findings (default ``medium``).

    Example config::

        audits:
          myazaudit:
            clouds: [myazvm]
            events: [azdatadiskencryptionevent]
    """

    def __init__(self, severity: str = "medium"):
        self._severity = util.check_severity("AzVMDataDiskEncryptionEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield an event per unencrypted data disk; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "vm_instance_view" or not isinstance(raw, dict):
            return
        try:
            _, _, data_disks = disk_encryption(raw)
        except (AttributeError, TypeError):
            return
        com = com if isinstance(com, dict) else {}
        reference = str(com.get("reference") or raw.get("id") or "")
        vm_name = raw.get("name") or reference
        for disk_name, encrypted in data_disks:
            if encrypted:
                continue
            yield {
                "ext": util.merge_dicts(ext, {"record_type": "vm_data_disk_encryption_event", "disk_name": disk_name}),
                "com": {
                    "cloud_type": "azure",
                    "record_type": "vm_data_disk_encryption_event",
                    "reference": reference,
                    "severity": self._severity,
                    "finding_key": disk_name,
                    "description": f"Azure virtual machine {vm_name} has unencrypted data disk {disk_name}.",
                    "recommendation": (
                        f"Encrypt data disk {disk_name} of Azure virtual machine {vm_name} with Azure Disk "
                        "Encryption (or encryption at host), so its data cannot be read from a copy of the disk."
                    ),
                },
            }

    def done(self) -> None:
        """Nothing to clean up."""

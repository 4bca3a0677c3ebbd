"""AwsEbsVolumeEncryptionEvent: flag EBS volumes that are not encrypted (AwsCloud ``ebs_volume`` records)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.contract import CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Not mapped to a CIS control: CIS AWS Foundations 7.0 checks encryption by default per region
#: (6.1.1, AwsEbsEncryptionByDefaultEvent), which only applies to new volumes; no control checks
#: the volumes that already exist, which is what this check does.
CHECK = CheckMetadata(
    check_id="aws_ebs_volume_unencrypted",
    title="AWS EBS volume is not encrypted",
    severity="medium",
    resource_type="ebs_volume",
    risk="The volume's data, and every snapshot taken of it, is stored unencrypted: whoever gets a copy "
    "of a snapshot (shared, made public, or copied to another account) reads it.",
    description="AWS EBS volume {volume_id} in {region} of account {account} is not encrypted ({attached}).",
    remediation="Encrypt AWS EBS volume {volume_id}: take a snapshot, copy it with encryption turned on, create "
    "a volume from the encrypted copy and swap it in (a volume cannot be encrypted in place); turn on EBS "
    "encryption by default in {region} so new volumes are encrypted.",
    links=(
        "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html",
        "https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html",
    ),
)


class AwsEbsVolumeEncryptionEvent:
    """Emit an ``ebs_volume_encryption_event`` for an ``ebs_volume`` record whose volume is not encrypted.

    The event's ext says whether the volume is attached (``attached``, ``attached_instances``): an
    unattached unencrypted volume is often a forgotten copy of data.
    """

    CHECK = CHECK

    def __init__(self, severity: str = CHECK.severity):
        self._severity = util.check_severity("AwsEbsVolumeEncryptionEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event when the volume is unencrypted; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "ebs_volume" or not isinstance(raw, dict):
            return
        if raw.get("Encrypted") is not False:
            return
        com = com if isinstance(com, dict) else {}
        volume_id = str(raw.get("VolumeId") or com.get("reference") or "")
        instances = [str(i) for i in ext.get("attached_instances") or []]
        attached = f"attached to {', '.join(instances)}" if instances else "not attached to any instance"
        values = {
            "volume_id": volume_id,
            "region": ext.get("region", ""),
            "account": ext.get("account_alias") or ext.get("account_id", ""),
            "attached": attached,
        }
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "ebs_volume_encryption_event", "attached": bool(instances)}),
            "com": {
                "cloud_type": "aws",
                "record_type": "ebs_volume_encryption_event",
                "reference": str(com.get("reference") or volume_id),
                "finding_key": volume_id,
                **CHECK.event_com(values, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

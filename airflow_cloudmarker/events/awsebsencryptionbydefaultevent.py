"""AwsEbsEncryptionByDefaultEvent: flag account regions where new EBS volumes are not encrypted by default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.contract import CIS_AWS, CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

CHECK = CheckMetadata(
    check_id="aws_ebs_encryption_by_default_disabled",
    title="AWS region does not turn on EBS volume encryption by default",
    severity="medium",
    resource_type="ebs_encryption_by_default",
    risk="Every new EBS volume (and the snapshots of it) in the region is unencrypted unless whoever creates "
    "it asks for encryption; one forgotten flag stores data unencrypted.",
    description="EBS encryption by default is off in region {region} of AWS account {account}.",
    remediation="Turn on EBS encryption by default in region {region} of AWS account {account} "
    "(aws ec2 enable-ebs-encryption-by-default --region {region}); existing volumes stay as they are.",
    links=("https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html",),
    controls={CIS_AWS: ["6.1.1"]},
)


class AwsEbsEncryptionByDefaultEvent:
    """Emit an ``ebs_encryption_by_default_event`` for an ``ebs_encryption_by_default`` record that is off.

    AwsCloud reads the setting once per account and region, so there is one finding per account and region.
    """

    CHECK = CHECK

    def __init__(self, severity: str = CHECK.severity):
        self._severity = util.check_severity("AwsEbsEncryptionByDefaultEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event when encryption by default is off; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "ebs_encryption_by_default":
            return
        if not isinstance(raw, dict) or raw.get("EbsEncryptionByDefault") is not False:
            return
        com = com if isinstance(com, dict) else {}
        region = str(ext.get("region") or "")
        account = str(ext.get("account_id") or "")
        alias = ext.get("account_alias")
        values = {"region": region, "account": f"{account} ({alias})" if alias else account}
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "ebs_encryption_by_default_event"}),
            "com": {
                "cloud_type": "aws",
                "record_type": "ebs_encryption_by_default_event",
                "reference": str(com.get("reference") or f"{account}/{region}"),
                "finding_key": region,
                **CHECK.event_com(values, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

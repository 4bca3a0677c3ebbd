"""AwsS3BucketPublicEvent: flag S3 buckets everyone can read or write, through an ACL or a policy, unblocked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker import util
from airflow_cloudmarker.aws.normalize import bucket_exposure
from airflow_cloudmarker.contract import CIS_AWS, CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterator

CHECK = CheckMetadata(
    check_id="aws_s3_bucket_public",
    title="AWS S3 bucket is public and no Block Public Access setting stops it",
    severity="high",
    resource_type="s3_bucket",
    risk="Anyone on the Internet (or anyone with any AWS account) can list or read the bucket's objects, "
    "or write to it: data leaks, and a writable bucket serves whatever an attacker puts in it.",
    description="AWS S3 bucket {bucket} of account {account} is public through its {via}{access}, and neither "
    "the bucket's nor the account's Block Public Access settings stop it.",
    remediation="Remove the public grants from the ACL and the public statements from the policy of S3 bucket "
    "{bucket}, or turn on Block Public Access (IgnorePublicAcls and RestrictPublicBuckets, best all four "
    "settings) for the bucket or for account {account}.",
    links=(
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html",
    ),
    controls={CIS_AWS: ["3.1.4"]},
)


class AwsS3BucketPublicEvent:
    """Emit an ``s3_bucket_public_event`` for an ``s3_bucket`` record that everyone may read or write.

    A public ACL grant (AllUsers or AuthenticatedUsers) counts unless IgnorePublicAcls is on for the
    bucket or the account; a policy S3 rates public counts unless RestrictPublicBuckets is on.
    """

    CHECK = CHECK

    def __init__(self, severity: str = CHECK.severity):
        self._severity = util.check_severity("AwsS3BucketPublicEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event for a public bucket; ignore other and malformed records."""
        ext, raw, com = (record.get(k) if isinstance(record, dict) else None for k in ("ext", "raw", "com"))
        if not isinstance(ext, dict) or ext.get("record_type") != "s3_bucket" or not isinstance(raw, dict):
            return
        exposure = bucket_exposure(raw)
        if not exposure["public"]:
            return
        com = com if isinstance(com, dict) else {}
        bucket = str(raw.get("Name") or com.get("reference") or "")
        access = exposure["access"]
        values = {
            "bucket": bucket,
            "account": ext.get("account_alias") or ext.get("account_id", ""),
            "via": " and ".join("ACL" if v == "acl" else "bucket policy" for v in exposure["via"]),
            "access": f" (grants: {' and '.join(access)})" if access else "",
        }
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "s3_bucket_public_event"}),
            "com": {
                "cloud_type": "aws",
                "record_type": "s3_bucket_public_event",
                "reference": str(com.get("reference") or bucket),
                "finding_key": bucket,
                "public_via": exposure["via"],
                "public_access": access,
                "public_grants": exposure["grants"],
                **CHECK.event_com(values, self._severity),
            },
        }

    def done(self) -> None:
        """Nothing to clean up."""

"""The AWS event plugins on AwsCloud-shaped records: what fires, what does not, finding keys and texts."""

from __future__ import annotations

import pytest

from airflow_cloudmarker.events.awsebsencryptionbydefaultevent import AwsEbsEncryptionByDefaultEvent
from airflow_cloudmarker.events.awsebsvolumeencryptionevent import AwsEbsVolumeEncryptionEvent
from airflow_cloudmarker.events.awss3bucketpublicevent import AwsS3BucketPublicEvent

EXT = {"cloud_type": "aws", "account_id": "111122223333", "account_alias": "prod", "region": "eu-west-1"}
ALL_USERS = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}


def volume(encrypted, instances=()):
    return {
        "raw": {
            "VolumeId": "vol-1",
            "Encrypted": encrypted,
            "Attachments": [{"InstanceId": i, "State": "attached"} for i in instances],
        },
        "ext": {**EXT, "record_type": "ebs_volume", "attached": bool(instances), "attached_instances": list(instances)},
        "com": {"cloud_type": "aws", "record_type": "ebs_volume", "reference": "arn:aws:ec2:eu-west-1:1:volume/vol-1"},
    }


def test_unencrypted_volume_fires_once_and_says_whether_it_is_attached():
    (event,) = AwsEbsVolumeEncryptionEvent().eval(volume(False, ["i-1"]))
    com = event["com"]
    assert com["check_id"] == "aws_ebs_volume_unencrypted" and com["severity"] == "medium"
    assert com["finding_key"] == "vol-1" and com["reference"] == "arn:aws:ec2:eu-west-1:1:volume/vol-1"
    assert com["description"] == "AWS EBS volume vol-1 in eu-west-1 of account prod is not encrypted (attached to i-1)."
    assert event["ext"]["attached"] is True and event["ext"]["record_type"] == "ebs_volume_encryption_event"
    (loose,) = AwsEbsVolumeEncryptionEvent(severity="high").eval(volume(False))
    assert "not attached to any instance" in loose["com"]["description"] and loose["com"]["severity"] == "high"
    assert loose["ext"]["attached"] is False


@pytest.mark.parametrize("record", [volume(True), volume(None), {"ext": {"record_type": "ebs_volume"}}, {}, None, []])
def test_encrypted_unknown_or_malformed_volumes_do_not_fire(record):
    assert list(AwsEbsVolumeEncryptionEvent().eval(record) or []) == []


def ebs_default(enabled, region="eu-west-1"):
    return {
        "raw": {"EbsEncryptionByDefault": enabled},
        "ext": {**EXT, "region": region, "record_type": "ebs_encryption_by_default"},
        "com": {"reference": f"arn:aws:ec2:{region}:111122223333:ebs-encryption-by-default"},
    }


def test_encryption_by_default_off_fires_per_account_and_region():
    (event,) = AwsEbsEncryptionByDefaultEvent().eval(ebs_default(False))
    com = event["com"]
    assert com["check_id"] == "aws_ebs_encryption_by_default_disabled"
    assert com["finding_key"] == "eu-west-1"
    assert com["reference"] == "arn:aws:ec2:eu-west-1:111122223333:ebs-encryption-by-default"
    assert (
        com["description"] == "EBS encryption by default is off in region eu-west-1 of AWS account 111122223333 (prod)."
    )
    assert "--region eu-west-1" in com["recommendation"]
    assert list(AwsEbsEncryptionByDefaultEvent().eval(ebs_default(True))) == []
    assert list(AwsEbsEncryptionByDefaultEvent().eval(ebs_default(None))) == []


def s3_bucket(grants=(), policy_public=None, block=None, account_block=None):
    return {
        "raw": {
            "Name": "logs",
            "Acl": {"Grants": [{"Grantee": ALL_USERS, "Permission": p} for p in grants]},
            "PolicyStatus": None if policy_public is None else {"IsPublic": policy_public},
            "PublicAccessBlock": block,
            "AccountPublicAccessBlock": account_block,
        },
        "ext": {**EXT, "record_type": "s3_bucket"},
        "com": {"reference": "arn:aws:s3:::logs"},
    }


def test_public_bucket_fires_naming_how_it_is_public():
    (event,) = AwsS3BucketPublicEvent().eval(s3_bucket(["READ", "WRITE"], policy_public=True))
    com = event["com"]
    assert com["check_id"] == "aws_s3_bucket_public" and com["severity"] == "high"
    assert com["finding_key"] == "logs" and com["reference"] == "arn:aws:s3:::logs"
    assert com["public_via"] == ["acl", "policy"] and com["public_access"] == ["read", "write"]
    assert com["description"].startswith(
        "AWS S3 bucket logs of account prod is public through its ACL and bucket policy (grants: read and write)"
    )
    (by_policy,) = AwsS3BucketPublicEvent().eval(s3_bucket(policy_public=True))
    assert "through its bucket policy, and" in by_policy["com"]["description"]


@pytest.mark.parametrize(
    "record",
    [
        s3_bucket(),
        s3_bucket(policy_public=False),
        s3_bucket(["READ"], block={"IgnorePublicAcls": True}),
        s3_bucket(["READ"], True, account_block={"IgnorePublicAcls": True, "RestrictPublicBuckets": True}),
        {"raw": {"Name": "x"}, "ext": {"record_type": "s3_bucket"}},
        {"raw": "x", "ext": {"record_type": "s3_bucket"}},
        {"ext": {"record_type": "ebs_volume"}, "raw": {}},
    ],
)
def test_private_blocked_or_malformed_buckets_do_not_fire(record):
    assert list(AwsS3BucketPublicEvent().eval(record)) == []


@pytest.mark.parametrize("cls", [AwsEbsVolumeEncryptionEvent, AwsS3BucketPublicEvent, AwsEbsEncryptionByDefaultEvent])
def test_a_bad_severity_fails_at_construction_naming_the_plugin(cls):
    with pytest.raises(ValueError, match=cls.__name__):
        cls(severity="urgent")

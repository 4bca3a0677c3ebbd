"""AwsCloud with the real amazon provider hook and boto3 against moto on loopback, and the AWS events on its records.

The estate (tests/support/aws_estate.py) is an organization with two member accounts in three
regions. Every request goes to the loopback proxy in front of moto (tests/servers/aws.py): the
connection gives every service, STS included, that endpoint; IMDS is disabled; and HTTP(S)_PROXY
points at a closed loopback port, so a request to anywhere else fails instead of leaving the machine.
"""

from __future__ import annotations

import collections
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from servers.aws import MANAGEMENT_ACCOUNT, SECRET, MotoServer
from support.aws_estate import REGIONS, ROLE, build

from airflow_cloudmarker.aws import session as aws_session
from airflow_cloudmarker.aws.session import AwsAccess, AwsConfigError
from airflow_cloudmarker.clouds.awscloud import AwsCloud, ItemReadError
from airflow_cloudmarker.events.awsebsencryptionbydefaultevent import AwsEbsEncryptionByDefaultEvent
from airflow_cloudmarker.events.awsebsvolumeencryptionevent import AwsEbsVolumeEncryptionEvent
from airflow_cloudmarker.events.awss3bucketpublicevent import AwsS3BucketPublicEvent
from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent

#: The environment of every AWS test: nothing ambient, nothing off loopback.
LOOPBACK_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


def loopback_env(server: MotoServer) -> dict[str, str]:
    """LOOPBACK_ENV plus the connections of the tests (aws_default: the management account's keys)."""
    return {
        **LOOPBACK_ENV,
        "AIRFLOW_CONN_AWS_DEFAULT": server.connection_json(),
        "AIRFLOW_CONN_AWS_WRONG_KEY": server.connection_json(key_id="AKIAWRONGKEY00000000", secret="wrong-Secret-77"),
    }


@pytest.fixture(scope="module")
def moto():
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(LOOPBACK_ENV)
    with MotoServer() as server:
        os.environ.update(loopback_env(server))
        estate = build(server)
        yield server, estate
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Each test starts as a new fetch task process does: no session, identity, alias or hook kept from another test."""
    aws_session.reset()
    yield


def read_like_the_dag(**params) -> tuple[list[str], list[dict], dict]:
    """shards() once, then read(shard) and done() on a fresh instance per shard, as the fetch tasks do."""
    shards = AwsCloud(**params).shards()
    records, counts = [], collections.Counter()
    for shard in shards:
        cloud = AwsCloud(**params)
        records.extend(cloud.read(shard))
        counts.update(cloud.api_counts())
        cloud.done()
    return shards, records, dict(counts)


def events_of(records, *plugins):
    return [e for r in records for p in plugins for e in p.eval(r) or []]


ORG = {"organization": True, "role_name": ROLE, "regions": list(REGIONS)}


def test_an_organization_audit_reads_every_account_and_region(moto):
    server, estate = moto
    shards, records, counts = read_like_the_dag(**ORG)
    accounts = sorted([MANAGEMENT_ACCOUNT, estate.prod, estate.dev])
    assert sorted(shards) == sorted(f"{a}/{r}" for a in accounts for r in ("global", *REGIONS))
    kinds = collections.Counter((r["ext"]["account_id"], r["ext"]["region"], r["ext"]["record_type"]) for r in records)
    for account in accounts:
        for region in REGIONS:
            assert kinds[(account, region, "ebs_encryption_by_default")] == 1
            assert kinds[(account, region, "security_group")] >= 1  # every VPC has its default group
        assert kinds[(account, "global", "s3_account_public_access_block")] == 1
    assert kinds[(estate.prod, "eu-west-1", "instance")] == 1
    assert kinds[(estate.prod, "eu-west-1", "ebs_volume")] == 3  # the instance's root volume too
    assert kinds[(estate.prod, "eu-west-1", "s3_bucket")] == 4
    assert kinds[(estate.dev, "us-east-1", "s3_bucket")] == 1
    assert all(r["ext"]["cloud_type"] == "aws" and r["com"]["cloud_type"] == "aws" for r in records)
    prod = [r for r in records if r["ext"]["account_id"] == estate.prod]
    assert {r["ext"]["account_alias"] for r in prod} == {"acme-prod"}
    assert counts["throttled_calls"] == 0 and counts["api_calls"] > 0
    # one AssumeRole per member account for shards() and one per member account in the reads of this process
    assert server.calls[("sts", "AssumeRole")] >= 2


def test_the_events_fire_on_the_estate(moto):
    _, estate = moto
    _, records, _ = read_like_the_dag(**ORG)
    firewall = events_of(records, FirewallRuleEvent())
    exposed = {(e["ext"]["account_id"], e["ext"]["group_name"], tuple(e["com"]["exposed_ports"])) for e in firewall}
    assert exposed == {(estate.prod, "ssh-open", (22,)), (estate.prod, "rdp-v6", (3389,))}  # not web (443)
    rdp = next(e for e in firewall if e["ext"]["group_name"] == "rdp-v6")
    assert rdp["com"]["check_id"] == "firewall_rdp_open_to_internet"
    assert rdp["com"]["reference"].endswith(f"security-group/{estate.ids['rdp']}/ingress/tcp/3389")

    volumes = {e["com"]["finding_key"]: e for e in events_of(records, AwsEbsVolumeEncryptionEvent())}
    unencrypted = {
        r["raw"]["VolumeId"] for r in records if r["ext"]["record_type"] == "ebs_volume" and not r["raw"]["Encrypted"]
    }
    assert set(volumes) == unencrypted and estate.ids["sealed"] not in volumes
    assert volumes[estate.ids["data"]]["ext"]["attached"] is True
    assert estate.ids["instance"] in volumes[estate.ids["data"]]["com"]["description"]
    assert volumes[estate.ids["loose"]]["ext"]["attached"] is False
    buckets = events_of(records, AwsS3BucketPublicEvent())
    assert {(e["com"]["finding_key"], tuple(e["com"]["public_via"])) for e in buckets} == {
        ("prod-public-acl", ("acl",)),
        ("prod-public-policy", ("policy",)),
    }  # not prod-ignored-acl (IgnorePublicAcls) nor dev-public-acl (the account's block)
    defaults = events_of(records, AwsEbsEncryptionByDefaultEvent())
    off = {(e["ext"]["account_id"], e["com"]["finding_key"]) for e in defaults}
    every = {(a, r) for a in (MANAGEMENT_ACCOUNT, estate.prod, estate.dev) for r in REGIONS}
    assert off == every - {(estate.prod, "eu-west-1")}


def test_the_account_public_access_block_is_read_through_the_loopback_endpoint(moto):
    server, estate = moto
    cloud = AwsCloud(accounts=[estate.dev], role_name=ROLE, regions=["us-east-1"])
    records = list(cloud.read(f"{estate.dev}/global"))
    (block,) = [r for r in records if r["ext"]["record_type"] == "s3_account_public_access_block"]
    assert block["com"]["block"] == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    (bucket,) = [r for r in records if r["ext"]["record_type"] == "s3_bucket"]
    assert bucket["raw"]["AccountPublicAccessBlock"]["IgnorePublicAcls"] is True
    assert bucket["com"]["public"] is False


def test_pagination_reads_every_security_group_volume_and_instance(moto):
    server, estate = moto
    server.reset_counts()
    params = {"accounts": [estate.dev], "role_name": ROLE, "regions": ["ap-southeast-2"], "_page_size": 5}
    cloud = AwsCloud(**params)
    records = list(cloud.read(f"{estate.dev}/ap-southeast-2"))
    kinds = collections.Counter(r["ext"]["record_type"] for r in records)
    assert kinds["security_group"] == 61  # 60 and the default VPC's
    assert kinds["ebs_volume"] >= 60  # and the instances' root volumes
    assert kinds["instance"] == 12
    # moto pages instances by reservation (5 + 5 + 2); it returns groups and volumes in one page whatever the size
    assert server.calls[("ec2", "DescribeInstances")] == 3
    assert len({r["com"]["reference"] for r in records if r["ext"]["record_type"] == "security_group"}) == 61


def test_a_throttled_call_is_retried_and_counted(moto):
    server, estate = moto
    server.reset_counts()
    server.throttle("DescribeVolumes", 2)
    cloud = AwsCloud(accounts=[estate.prod], role_name=ROLE, regions=["eu-west-1"], retry_mode="standard")
    records = list(cloud.read(f"{estate.prod}/eu-west-1"))
    assert sum(r["ext"]["record_type"] == "ebs_volume" for r in records) == 3
    assert server.throttled[("ec2", "DescribeVolumes")] == 2
    counts = cloud.api_counts()
    assert counts["throttled_calls"] == 2
    assert counts["api_calls"] == sum(server.calls.values())  # every attempt counted, as AWS counts them


def test_throttling_past_the_attempts_fails_the_shard(moto):
    server, estate = moto
    server.throttle("DescribeSecurityGroups", 5)
    cloud = AwsCloud(accounts=[estate.prod], role_name=ROLE, regions=["eu-west-1"], max_attempts=2)
    with pytest.raises(Exception, match="RequestLimitExceeded"):
        list(cloud.read(f"{estate.prod}/eu-west-1"))
    assert cloud.api_counts()["throttled_calls"] == 2
    server.throttle("DescribeSecurityGroups", 0)


def test_a_wrong_key_fails_with_aws_error_and_no_secret_in_it(moto):
    server, _ = moto
    server.rejected_keys.add("AKIAWRONGKEY00000000")
    cloud = AwsCloud(conn_id="aws_wrong_key")
    with pytest.raises(Exception, match="InvalidClientTokenId") as caught:
        cloud.shards()
    assert "wrong-Secret-77" not in str(caught.value)
    assert cloud.api_counts()["api_calls"] == 1  # an auth error is not retried


def test_an_unknown_connection_is_an_error_naming_it_not_ambient_credentials(moto):
    server, _ = moto
    server.reset_counts()
    cloud = AwsCloud(conn_id="no_such_aws_connection")
    with pytest.raises(AwsConfigError, match="AwsCloud param conn_id: no Airflow connection 'no_such_aws_connection'"):
        cloud.shards()
    assert sum(server.calls.values()) == 0


def test_a_member_account_without_role_name_names_the_fix(moto):
    _, estate = moto
    cloud = AwsCloud(accounts=[estate.prod])
    with pytest.raises(AwsConfigError, match="param role_name is not set"):
        list(cloud.read(f"{estate.prod}/eu-west-1"))


def test_assumed_role_credentials_are_masked(moto):
    from airflow.sdk.log import redact

    _, estate = moto
    list(AwsCloud(accounts=[estate.prod], role_name=ROLE, regions=["eu-west-1"]).read(f"{estate.prod}/eu-west-1"))
    (assumed,) = [s for (conn, account, _), (s, _) in aws_session._SESSIONS.items() if account == estate.prod]
    creds = assumed.get_credentials()
    assert creds.secret_key and creds.token
    assert redact(f"key {creds.secret_key} token {creds.token}") == "key *** token ***"
    assert SECRET not in redact(f"connection secret {SECRET}")


def test_default_regions_are_the_enabled_regions_of_the_account(moto):
    cloud = AwsCloud()
    shards = cloud.shards()
    regions = [s.split("/", 1)[1] for s in shards]
    assert regions[0] == "global" and {"eu-west-1", "us-east-1", "ap-southeast-2"} <= set(regions)
    assert {s.split("/", 1)[0] for s in shards} == {MANAGEMENT_ACCOUNT}


def test_buckets_that_cannot_be_read_fail_the_shard_after_the_other_records(moto):
    server, estate = moto
    server.throttle("GET bucket?acl", 100)
    cloud = AwsCloud(accounts=[estate.prod], role_name=ROLE, max_attempts=1)
    records = []
    with pytest.raises(ItemReadError, match=f"4 of 4 S3 buckets of account {estate.prod} could not be read") as caught:
        for record in cloud.read(f"{estate.prod}/global"):
            records.append(record)
    server.throttle("GET bucket?acl", 0)
    for name in ("prod-ignored-acl", "prod-private", "prod-public-acl", "prod-public-policy"):
        assert name in str(caught.value)  # every bucket named, so its findings are not resolved unseen
    assert [r["ext"]["record_type"] for r in records] == ["s3_account_public_access_block"]


def test_a_connection_role_arn_is_assumed_by_the_hook(moto, monkeypatch):
    server, estate = moto
    extra = {"role_arn": f"arn:aws:iam::{estate.prod}:role/{ROLE}", "assume_role_method": "assume_role"}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_PROD_ROLE", server.connection_json(**extra))
    cloud = AwsCloud(conn_id="aws_prod_role", regions=["eu-west-1"])
    assert cloud.shards() == [f"{estate.prod}/global", f"{estate.prod}/eu-west-1"]
    records = list(AwsCloud(conn_id="aws_prod_role", regions=["eu-west-1"]).read(f"{estate.prod}/eu-west-1"))
    assert {r["ext"]["group_name"] for r in records if r["ext"]["record_type"] == "firewall_rule"} >= {"ssh-open"}


def test_a_connection_without_keys_uses_the_default_chain(moto, monkeypatch):
    server, _ = moto
    conn = {"conn_type": "aws", "extra": {"region_name": "us-east-1", "endpoint_url": server.endpoint}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_AMBIENT", json.dumps(conn))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment-Secret")
    server.reset_counts()
    assert AwsCloud(conn_id="aws_ambient", regions=["us-east-1"]).shards() == [
        f"{MANAGEMENT_ACCOUNT}/global",
        f"{MANAGEMENT_ACCOUNT}/us-east-1",
    ]
    assert server.calls[("sts", "GetCallerIdentity")] == 1


def test_clients_share_one_service_model_and_class_yet_count_their_own_calls(moto):
    server, estate = moto
    one = AwsAccess("AwsCloud", "aws_default", ROLE, "adaptive", 3)
    two = AwsAccess("AwsCloud", "aws_default", ROLE, "adaptive", 3)
    eu = one.client(estate.prod, "ec2", "eu-west-1")  # an assumed session
    us = two.client(MANAGEMENT_ACCOUNT, "ec2", "us-east-1")  # the connection's own
    assert eu.meta.service_model is us.meta.service_model  # across sessions
    ap = two.client(estate.prod, "ec2", "ap-southeast-2")
    assert type(ap) is type(eu) and ap is not eu  # the class: per session (its class-creating handlers)
    assert (eu.meta.region_name, us.meta.region_name, ap.meta.region_name) == (
        "eu-west-1",
        "us-east-1",
        "ap-southeast-2",
    )
    plain = server.client("ec2")  # a session that is not AwsCloud's is built as botocore builds it
    assert plain.meta.service_model is not eu.meta.service_model and type(plain) is not type(eu)
    before = (one.counter.calls, two.counter.calls)
    eu.get_ebs_encryption_by_default()
    assert (one.counter.calls, two.counter.calls) == (before[0] + 1, before[1])
    assert eu.describe_security_groups()["SecurityGroups"][0]["OwnerId"] == estate.prod  # and in its account


def test_clients_built_from_one_session_in_many_threads_all_work(moto):
    _, estate = moto
    access = AwsAccess("AwsCloud", "aws_default", ROLE, "adaptive", 3)
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda region: access.client(estate.dev, "ec2", region), list(REGIONS) * 4))
    assert [c.meta.region_name for c in clients] == list(REGIONS) * 4
    assert all("EbsEncryptionByDefault" in c.get_ebs_encryption_by_default() for c in clients)


def test_the_connection_is_looked_up_once_per_process(moto):
    first, second = AwsCloud(), AwsCloud()
    assert first._access.hook() is second._access.hook()
    aws_session.reset()  # a new process
    assert AwsCloud()._access.hook() is not first._access.hook()

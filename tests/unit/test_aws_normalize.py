"""AWS record shaping (airflow_cloudmarker.aws.normalize) on the dicts boto3 returns, and AwsCloud's params."""

from __future__ import annotations

import datetime
import re

import pytest

from airflow_cloudmarker.aws import normalize as aws
from airflow_cloudmarker.aws.session import AwsConfigError
from airflow_cloudmarker.clouds.awscloud import AwsCloud
from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent

GROUP_REF = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1"
EXT = {"cloud_type": "aws", "account_id": "111122223333", "account_alias": "prod", "region": "eu-west-1"}


def group(ingress=(), egress=()):
    return {
        "GroupId": "sg-1",
        "GroupName": "web",
        "VpcId": "vpc-1",
        "IpPermissions": list(ingress),
        "IpPermissionsEgress": list(egress),
    }


def permission(protocol="tcp", low=22, high=22, v4=(), v6=(), groups=(), prefixes=()):
    perm = {
        "IpProtocol": protocol,
        "IpRanges": [{"CidrIp": c} for c in v4],
        "Ipv6Ranges": [{"CidrIpv6": c} for c in v6],
        "UserIdGroupPairs": [{"GroupId": g, "UserId": "111122223333"} for g in groups],
        "PrefixListIds": [{"PrefixListId": p} for p in prefixes],
    }
    if low is not None:
        perm.update(FromPort=low, ToPort=high)
    return perm


def test_each_permission_is_one_firewall_rule_in_the_common_shape():
    sg = group(
        ingress=[
            permission(v4=["0.0.0.0/0", "10.0.0.0/8"], v6=["::/0"]),
            permission("-1", None, None, groups=["sg-2"]),
        ],
        egress=[permission("-1", None, None, v4=["0.0.0.0/0"])],
    )
    first, everything, outbound = aws.firewall_rules(sg, GROUP_REF, EXT)
    assert first["com"] == {
        "cloud_type": "aws",
        "record_type": "firewall_rule",
        "reference": f"{GROUP_REF}/ingress/tcp/22",
        "enabled": True,
        "direction": "in",
        "access": "allow",
        "protocol": "tcp",
        "source_addresses": ["0.0.0.0/0", "10.0.0.0/8", "::/0"],
        "destination_addresses": [],
        "destination_ports": ["22"],
        "priority": None,
    }
    assert first["ext"] == {
        **EXT,
        "record_type": "firewall_rule",
        "group_id": "sg-1",
        "group_name": "web",
        "vpc_id": "vpc-1",
    }
    assert first["raw"] == sg["IpPermissions"][0]
    assert everything["com"]["protocol"] == "all" and everything["com"]["destination_ports"] == ["0-65535"]
    assert everything["com"]["source_addresses"] == ["sg-2"]
    assert outbound["com"]["direction"] == "out"
    assert outbound["com"]["source_addresses"] == [] and outbound["com"]["destination_addresses"] == ["0.0.0.0/0"]


@pytest.mark.parametrize(
    ("perm", "protocol", "ports"),
    [
        (permission("tcp", 8000, 8080), "tcp", ["8000-8080"]),
        (permission("6", 0, 65535), "tcp", ["0-65535"]),
        (permission("udp", 53, 53), "udp", ["53"]),
        (permission("icmp", 8, -1), "icmp", ["0-65535"]),  # ICMP type/code, not ports
        (permission("58", -1, -1), "icmpv6", ["0-65535"]),
        (permission("-1", None, None), "all", ["0-65535"]),
        ({"IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "all", ["0-65535"]),  # no protocol at all
    ],
)
def test_protocols_and_port_ranges(perm, protocol, ports):
    (rule,) = aws.firewall_rules(group(ingress=[perm]), GROUP_REF, EXT)
    assert rule["com"]["protocol"] == protocol
    assert rule["com"]["destination_ports"] == ports


@pytest.mark.parametrize(
    ("perm", "exposed"),
    [
        (permission(v4=["0.0.0.0/0"]), [22]),
        (permission(v6=["::/0"]), [22]),  # IPv6 Internet counts too (CIS AWS 6.4)
        (permission("-1", None, None, v4=["0.0.0.0/0"]), [22, 1433, 1521, 3306, 3389, 5432]),
        (permission("tcp", 3000, 3400, v4=["0.0.0.0/0"]), [3306, 3389]),
        (permission(v4=["10.0.0.0/8"], groups=["sg-2"]), None),
        (permission("udp", 0, 65535, v4=["0.0.0.0/0"]), None),
    ],
)
def test_firewall_rule_event_reads_aws_rules_unchanged(perm, exposed):
    (rule,) = aws.firewall_rules(group(ingress=[perm]), GROUP_REF, EXT)
    events = list(FirewallRuleEvent().eval(rule))
    if exposed is None:
        assert events == []
        return
    (event,) = events
    assert event["com"]["exposed_ports"] == exposed
    assert event["com"]["reference"] == rule["com"]["reference"]
    assert event["com"]["description"].startswith(f"AWS firewall rule {GROUP_REF}/ingress/")
    assert event["ext"]["account_id"] == "111122223333"


def test_egress_rules_never_fire():
    (rule,) = aws.firewall_rules(group(egress=[permission("-1", None, None, v4=["0.0.0.0/0"])]), GROUP_REF, EXT)
    assert list(FirewallRuleEvent().eval(rule)) == []


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
OWNER_GRANT = {"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"}
ALL_ON = dict.fromkeys(aws.PUBLIC_ACCESS_BLOCK_FIELDS, True)
ALL_OFF = dict.fromkeys(aws.PUBLIC_ACCESS_BLOCK_FIELDS, False)


def bucket(grants=(), policy_public=None, block=None, account_block=None):
    return {
        "Name": "b",
        "Acl": {
            "Grants": [OWNER_GRANT, *({"Grantee": {"Type": "Group", "URI": u}, "Permission": p} for u, p in grants)]
        },
        "PolicyStatus": None if policy_public is None else {"IsPublic": policy_public},
        "PublicAccessBlock": block,
        "AccountPublicAccessBlock": account_block,
    }


@pytest.mark.parametrize(
    ("facts", "public", "via", "access"),
    [
        (bucket(), False, [], []),
        (bucket([(ALL_USERS, "READ")]), True, ["acl"], ["read"]),
        (bucket([(AUTHENTICATED, "WRITE")]), True, ["acl"], ["write"]),
        (bucket([(ALL_USERS, "FULL_CONTROL")]), True, ["acl"], ["read", "write"]),
        (bucket(policy_public=True), True, ["policy"], []),
        (bucket(policy_public=False), False, [], []),
        (bucket([(ALL_USERS, "READ")], True), True, ["acl", "policy"], ["read"]),
        # what blocks: IgnorePublicAcls for ACLs, RestrictPublicBuckets for policies, bucket or account
        (bucket([(ALL_USERS, "READ")], block={**ALL_OFF, "IgnorePublicAcls": True}), False, [], []),
        (bucket([(ALL_USERS, "READ")], account_block={**ALL_OFF, "IgnorePublicAcls": True}), False, [], []),
        (bucket(policy_public=True, account_block={**ALL_OFF, "RestrictPublicBuckets": True}), False, [], []),
        (bucket(policy_public=True, block={**ALL_OFF, "IgnorePublicAcls": True}), True, ["policy"], []),
        # BlockPublicAcls/BlockPublicPolicy refuse new public settings; existing ones stay in force
        (bucket([(ALL_USERS, "READ")], block={**ALL_OFF, "BlockPublicAcls": True}), True, ["acl"], ["read"]),
        (bucket([(ALL_USERS, "READ")], True, block=ALL_ON), False, [], []),
    ],
)
def test_bucket_exposure(facts, public, via, access):
    exposure = aws.bucket_exposure(facts)
    assert (exposure["public"], exposure["via"], exposure["access"]) == (public, via, access)


def test_plain_makes_api_results_json_ready():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert aws.plain({"A": [when], "ResponseMetadata": {"x": 1}, "B": (1, b"x")}) == {
        "A": ["2026-01-02T03:04:05+00:00"],
        "B": [1, "x"],
    }


def test_volume_attachments_and_references():
    volume = {"Attachments": [{"InstanceId": "i-1", "State": "attached"}, {"InstanceId": "i-2", "State": "detached"}]}
    assert aws.volume_attachments(volume) == ["i-1"]
    assert aws.arn("ec2", "eu-west-1", "1", "volume/vol-1") == "arn:aws:ec2:eu-west-1:1:volume/vol-1"
    assert aws.bucket_arn("b", "aws-cn") == "arn:aws-cn:s3:::b"
    assert aws.account_arn("1") == "arn:aws:iam::1:root"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"conn_id": ""}, "AwsCloud param conn_id must be a non-empty string"),
        ({"regions": "eu-west-1"}, "AwsCloud param regions must be a list such as [eu-west-1, us-east-1]"),
        ({"accounts": [111122223333]}, None),
        ({"accounts": ["1234"]}, "AwsCloud param accounts: ['1234'] are not 12-digit account ids"),
        ({"organization": True}, "AwsCloud param role_name is required with organization: true"),
        ({"organization": "yes", "role_name": "r"}, "AwsCloud param organization must be true or false"),
        ({"organization": True, "role_name": "r", "accounts": ["111122223333"]}, "AwsCloud: set either param accounts"),
        ({"retry_mode": "fast"}, "AwsCloud param retry_mode must be one of adaptive, standard, legacy"),
        ({"max_attempts": 0}, "AwsCloud param max_attempts must be a positive integer"),
        ({"threads": True}, "AwsCloud param threads must be a positive integer"),
    ],
)
def test_bad_params_fail_at_construction_naming_the_param(params, message):
    if message is None:
        AwsCloud(**params)  # an int account id from YAML is fine: it is read as its digits
        return
    with pytest.raises(AwsConfigError, match="^" + re.escape(message)):
        AwsCloud(**params)


def test_construction_touches_neither_network_nor_connection():
    cloud = AwsCloud(conn_id="no_such_connection", organization=True, role_name="Audit")
    assert cloud.api_counts() == {"api_calls": 0, "throttled_calls": 0}

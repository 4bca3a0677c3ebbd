"""Pure AWS record shaping: security groups to ``firewall_rule`` records, S3 bucket exposure, references.

No SDK imports here: AwsCloud, the AWS event plugins and the unit tests use these functions on the
dicts boto3 returns. FirewallRuleEvent reads the ``com`` shape produced by :func:`firewall_rules`,
the same shape AzCloud (azure/normalize.py) and GCPCloud (gcp/firewall.py) produce.

An EC2 security group holds ``IpPermissions`` (inbound) and ``IpPermissionsEgress`` (outbound);
each permission is one protocol and one port range for a list of peers (IPv4 and IPv6 ranges,
prefix lists, other security groups). Security groups only allow (there are no deny rules; what
no permission allows is refused), so every record has ``access: allow``; one record per
permission, like one per NSG rule on Azure and one per allowed entry on GCP.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

CLOUD_TYPE = "aws"
ALL_PORTS = "0-65535"
#: IpProtocol is a name, an IANA number, or ``-1`` for every protocol.
PROTOCOL_NUMBERS = {"-1": "all", "1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "47": "gre", "50": "esp"}
#: Protocols whose FromPort/ToPort are ports (for ICMP they are the ICMP type and code).
PORT_PROTOCOLS = frozenset({"tcp", "udp"})

#: S3 ACL grantee groups that mean "everyone" (AllUsers) and "anyone with an AWS account" (AuthenticatedUsers).
PUBLIC_GRANTEES = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers",
}
_READ_PERMISSIONS = frozenset({"READ", "READ_ACP", "FULL_CONTROL"})
_WRITE_PERMISSIONS = frozenset({"WRITE", "WRITE_ACP", "FULL_CONTROL"})
PUBLIC_ACCESS_BLOCK_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


# -- references (ARNs) -------------------------------------------------------------------------


def arn(service: str, region: str, account: str, resource: str, partition: str = "aws") -> str:
    """``arn:aws:ec2:eu-west-1:111122223333:volume/vol-1``: the reference of a resource."""
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def account_arn(account: str, partition: str = "aws") -> str:
    """The account's own principal (``arn:aws:iam::111122223333:root``), the reference of account records."""
    return f"arn:{partition}:iam::{account}:root"


def bucket_arn(name: str, partition: str = "aws") -> str:
    """``arn:aws:s3:::my-bucket`` (bucket ARNs carry neither region nor account)."""
    return f"arn:{partition}:s3:::{name}"


# -- JSON-ready API results -----------------------------------------------------------------------


def plain(value: Any) -> Any:
    """An API result as plain JSON values: datetimes as ISO 8601 text, ``ResponseMetadata`` dropped."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


# -- security groups -> firewall_rule ---------------------------------------------------------------


def normalize_protocol(value: Any) -> str:
    """``-1`` -> ``all``, ``6``/``TCP`` -> ``tcp``; a missing protocol means every protocol."""
    text = str(value if value is not None else "-1").strip().lower()
    return PROTOCOL_NUMBERS.get(text, text) or "all"


def permission_ports(permission: Mapping[str, Any]) -> list[str]:
    """The ports of a permission as strings (``"22"``, ``"8000-8080"``); every port when none apply."""
    protocol = normalize_protocol(permission.get("IpProtocol"))
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if protocol not in PORT_PROTOCOLS or not isinstance(low, int) or not isinstance(high, int) or low < 0:
        return [ALL_PORTS]  # all protocols, ICMP (type/code, not ports), or a range left open
    high = low if high < 0 else high
    return [str(low) if low == high else f"{low}-{high}"]


def permission_peers(permission: Mapping[str, Any]) -> list[str]:
    """Every peer of a permission: IPv4 and IPv6 ranges, prefix list ids and security group ids, in that order."""
    peers: list[str] = []
    for key, field in (
        ("IpRanges", "CidrIp"),
        ("Ipv6Ranges", "CidrIpv6"),
        ("PrefixListIds", "PrefixListId"),
        ("UserIdGroupPairs", "GroupId"),
    ):
        for entry in permission.get(key) or []:
            value = entry.get(field) if isinstance(entry, Mapping) else None
            if value and value not in peers:
                peers.append(str(value))
    return peers


def firewall_rule_com(permission: Mapping[str, Any], direction: str, group_reference: str) -> dict[str, Any]:
    """One permission of a security group in the common firewall_rule shape (``direction`` is ``in``/``out``)."""
    protocol = normalize_protocol(permission.get("IpProtocol"))
    ports = permission_ports(permission)
    peers = permission_peers(permission)
    way = "ingress" if direction == "in" else "egress"
    return {
        "cloud_type": CLOUD_TYPE,
        "record_type": "firewall_rule",
        "reference": f"{group_reference}/{way}/{protocol}/{ports[0]}",
        "enabled": True,
        "direction": direction,
        "access": "allow",
        "protocol": protocol,
        "source_addresses": peers if direction == "in" else [],
        "destination_addresses": peers if direction == "out" else [],
        "destination_ports": ports,
        "priority": None,
    }


def firewall_rules(group: Mapping[str, Any], group_reference: str, ext: Mapping[str, Any]) -> Iterator[dict]:
    """Yield one ``firewall_rule`` record per inbound and outbound permission of a security group.

    ``raw`` is the permission as the API returned it; ``ext`` is ``ext`` with ``record_type``
    ``firewall_rule`` and the group's id, name and VPC.
    """
    rule_ext = {
        **ext,
        "record_type": "firewall_rule",
        "group_id": group.get("GroupId"),
        "group_name": group.get("GroupName"),
        "vpc_id": group.get("VpcId"),
    }
    for key, direction in (("IpPermissions", "in"), ("IpPermissionsEgress", "out")):
        for permission in group.get(key) or []:
            if isinstance(permission, Mapping):
                yield {
                    "raw": dict(permission),
                    "ext": dict(rule_ext),
                    "com": firewall_rule_com(permission, direction, group_reference),
                }


# -- EBS volumes ------------------------------------------------------------------------------------


def volume_attachments(volume: Mapping[str, Any]) -> list[str]:
    """The ids of the instances a volume is attached to (or being attached to)."""
    return [
        str(a["InstanceId"])
        for a in volume.get("Attachments") or []
        if isinstance(a, Mapping) and a.get("InstanceId") and a.get("State") in (None, "attaching", "attached", "busy")
    ]


# -- S3 bucket exposure ---------------------------------------------------------------------------------


def effective_block(bucket_block: Any, account_block: Any) -> dict[str, bool]:
    """The public access block in force for a bucket: a setting is on when the bucket's or the account's is."""
    blocks = [b for b in (bucket_block, account_block) if isinstance(b, Mapping)]
    return {name: any(b.get(name) is True for b in blocks) for name in PUBLIC_ACCESS_BLOCK_FIELDS}


def public_grants(acl: Any) -> list[dict[str, str]]:
    """The ACL grants to everyone or to every AWS account: ``[{"grantee": "AllUsers", "permission": "READ"}]``."""
    grants = acl.get("Grants") if isinstance(acl, Mapping) else None
    found = []
    for grant in grants or []:
        grantee = grant.get("Grantee") if isinstance(grant, Mapping) else None
        group = PUBLIC_GRANTEES.get(str((grantee or {}).get("URI", "")))
        if group:
            found.append({"grantee": group, "permission": str(grant.get("Permission", ""))})
    return found


def bucket_exposure(bucket: Mapping[str, Any]) -> dict[str, Any]:
    """Whether everyone can read or write a bucket (an ``s3_bucket`` record's raw) despite its public access blocks.

    A public ACL counts unless ``IgnorePublicAcls`` is on (for the bucket or the account); a policy
    S3 rates public (``PolicyStatus.IsPublic``) counts unless ``RestrictPublicBuckets`` is on.
    ``BlockPublicAcls`` and ``BlockPublicPolicy`` only refuse new public ACLs and policies; they
    do not neutralize one already there, so they do not count here.
    Returns ``public`` (bool), ``via`` (``acl``, ``policy``), ``access`` (``read``, ``write``: what
    the public ACL grants allow; PolicyStatus says a policy is public, not which actions it allows),
    the public ``grants`` and the effective ``block``.
    """
    block = effective_block(bucket.get("PublicAccessBlock"), bucket.get("AccountPublicAccessBlock"))
    grants = [] if block["IgnorePublicAcls"] else public_grants(bucket.get("Acl"))
    status = bucket.get("PolicyStatus")
    policy_public = (
        isinstance(status, Mapping) and status.get("IsPublic") is True and not block["RestrictPublicBuckets"]
    )
    access = set()
    for grant in grants:
        if grant["permission"] in _READ_PERMISSIONS:
            access.add("read")
        if grant["permission"] in _WRITE_PERMISSIONS:
            access.add("write")
    via = (["acl"] if grants else []) + (["policy"] if policy_public else [])
    return {"public": bool(via), "via": via, "access": sorted(access), "grants": grants, "block": block}

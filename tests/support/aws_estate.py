"""The AWS estate of the AWS tests, built in moto through plain boto3: an organization with two member accounts.

* ``prod`` (member): in eu-west-1 a security group open to SSH from 0.0.0.0/0 and a web group open
  to 443 only, an instance with an attached unencrypted volume, an encrypted volume, and EBS
  encryption by default on; in us-east-1 a group open to RDP from ``::/0`` and a loose unencrypted
  volume. S3: ``prod-public-acl`` (public-read ACL), ``prod-public-policy`` (Principal ``*``
  policy), ``prod-private`` and ``prod-ignored-acl`` (public-read but IgnorePublicAcls on).
* ``dev`` (member): the account-level S3 public access block all on, so ``dev-public-acl``
  (public-read) is not public; ap-southeast-2 holds ``many`` security groups and volumes and
  ``reservations`` instance reservations, for pagination.
* the management account has nothing but moto's default VPCs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from servers.aws import MANAGEMENT_ACCOUNT, MotoServer

REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
ROLE = "CloudmarkerAudit"
IMAGE = "ami-12c6146b"  # one of moto's default AMIs


@dataclass
class Estate:
    prod: str
    dev: str
    management: str = MANAGEMENT_ACCOUNT
    ids: dict = field(default_factory=dict)


def _bucket(s3, name: str, region: str) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def build(server: MotoServer, many: int = 60, reservations: int = 12) -> Estate:
    org = server.client("organizations")
    org.create_organization(FeatureSet="ALL")
    prod = org.create_account(AccountName="prod", Email="prod@example.com")["CreateAccountStatus"]["AccountId"]
    dev = org.create_account(AccountName="dev", Email="dev@example.com")["CreateAccountStatus"]["AccountId"]
    estate = Estate(prod=prod, dev=dev)
    server.account_client(prod, "iam").create_account_alias(AccountAlias="acme-prod")

    ec2 = server.account_client(prod, "ec2", "eu-west-1")
    ssh = ec2.create_security_group(GroupName="ssh-open", Description="ssh")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=ssh,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    web = ec2.create_security_group(GroupName="web", Description="https only")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    instance = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-west-1a"})
    instance_id = instance["Instances"][0]["InstanceId"]
    data = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=8, Encrypted=False)["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    sealed = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=8, Encrypted=True)["VolumeId"]
    ec2.enable_ebs_encryption_by_default()
    estate.ids.update(ssh=ssh, web=web, instance=instance_id, data=data, sealed=sealed)

    east = server.account_client(prod, "ec2", "us-east-1")
    rdp = east.create_security_group(GroupName="rdp-v6", Description="rdp")["GroupId"]
    east.authorize_security_group_ingress(
        GroupId=rdp,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
    )
    loose = east.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    estate.ids.update(rdp=rdp, loose=loose)

    s3 = server.account_client(prod, "s3", "eu-west-1")
    for name in ("prod-public-acl", "prod-public-policy", "prod-private", "prod-ignored-acl"):
        _bucket(s3, name, "eu-west-1")
    s3.put_bucket_acl(Bucket="prod-public-acl", ACL="public-read")
    s3.put_bucket_acl(Bucket="prod-ignored-acl", ACL="public-read")
    s3.put_public_access_block(
        Bucket="prod-ignored-acl",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::prod-public-policy/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket="prod-public-policy", Policy=json.dumps(policy))

    dev_s3 = server.account_client(dev, "s3", "us-east-1")
    dev_s3.create_bucket(Bucket="dev-public-acl")
    dev_s3.put_bucket_acl(Bucket="dev-public-acl", ACL="public-read")
    control = server.account_client(dev, "s3control", "us-east-1")
    _loopback_s3control(control, server)
    control.put_public_access_block(
        AccountId=dev,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ),
    )
    sydney = server.account_client(dev, "ec2", "ap-southeast-2")
    for i in range(many):
        sydney.create_security_group(GroupName=f"sg-{i:03d}", Description="many")
        sydney.create_volume(AvailabilityZone="ap-southeast-2a", Size=1, Encrypted=True)
    for _ in range(reservations):
        sydney.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)
    return estate


def _loopback_s3control(client, server: MotoServer) -> None:
    """botocore puts the account id in front of the s3control host; send it to the server itself."""
    host = server.endpoint.split("://", 1)[1]

    def rewrite(request, **kwargs):
        scheme, rest = request.url.split("://", 1)
        netloc, _, path = rest.partition("/")
        if netloc.endswith("." + host):
            request.url = f"{scheme}://{host}/{path}"

    client.meta.events.register("before-sign.s3-control.*", rewrite)

"""AwsCloud: security groups (and their rules), EC2 instances, EBS volumes and S3 buckets of AWS accounts and regions.

The shards are ``<account>/<region>`` pairs plus one ``<account>/global`` per account: the DAG
packs them into a bounded number of mapped fetch tasks (docs/plugins.md "Sharding"), so an
organization of many accounts times 17 regions is read in parallel, and a failing account or
region is named without losing the others' records.

Calls per ``<account>/<region>`` shard: DescribeSecurityGroups, DescribeInstances,
DescribeVolumes (each with its pages) and GetEbsEncryptionByDefault, run at once. Per
``<account>/global`` shard: the S3 account-level public access block (s3control), ListBuckets,
then per bucket GetBucketLocation (unless ListBuckets gave its region), GetPublicAccessBlock,
GetBucketPolicyStatus and GetBucketAcl.
Per account and process: one AssumeRole (member accounts) and one ListAccountAliases.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_cloudmarker import util
from airflow_cloudmarker.aws import normalize as aws
from airflow_cloudmarker.aws.session import RETRY_MODES, AwsAccess, AwsConfigError, error_code

log = logging.getLogger(__name__)

PLUGIN = "AwsCloud"
GLOBAL = "global"
#: Page sizes: the largest each API accepts, so a big account costs the fewest calls.
PAGE_SIZES = {"describe_security_groups": 1000, "describe_instances": 1000, "describe_volumes": 500}
#: ListBuckets page size (S3's largest). A paginated ListBuckets also returns each bucket's
#: BucketRegion, which saves a GetBucketLocation per bucket, and AWS refuses unpaginated ones in
#: accounts whose bucket quota is above 10,000.
BUCKETS_PAGE = 10000
#: Errors of a per-bucket call that mean "not configured", not a failure.
NOT_CONFIGURED = {
    "get_public_access_block": "NoSuchPublicAccessBlockConfiguration",
    "get_bucket_policy_status": "NoSuchBucketPolicy",
}
_ACCOUNT_ID_LENGTH = 12
MIN_PAGE_SIZE = 5


class ItemReadError(RuntimeError):
    """Some buckets could not be read; raised after every other record was yielded, so their findings stay open."""


def _check_text(name: str, value: Any, allow_none: bool = True) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise AwsConfigError(f"{PLUGIN} param {name} must be a non-empty string, not {value!r}")
    return value.strip()


def _check_list(name: str, value: Any, example: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise AwsConfigError(f"{PLUGIN} param {name} must be a list such as [{example}], or null, not {value!r}")
    items = tuple(str(v).strip() for v in value)
    if not all(items):
        raise AwsConfigError(f"{PLUGIN} param {name}: empty entry in {value!r}")
    return items


def _check_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AwsConfigError(f"{PLUGIN} param {name} must be a positive integer, not {value!r}")
    return value


class AwsCloud:
    """Read security groups (as ``firewall_rule`` records too), EC2 instances, EBS volumes and S3 buckets.

    Params:
        conn_id: the Airflow AWS connection (default ``aws_default``): its keys, ``role_arn``,
            profile or the default credential chain, endpoints and ``config_kwargs``.
        regions: the regions to read (default: every region enabled in each account).
        accounts: account ids to read (default: the connection's own account).
        organization: true reads every ACTIVE account of the connection's organization
            (the connection must be of the management or a delegated administrator account).
        role_name: the role assumed in every account other than the connection's own
            (``arn:aws:iam::<account>:role/<role_name>``); required with ``accounts`` or ``organization``.
        retry_mode: botocore's retry mode, ``adaptive`` (default), ``standard`` or ``legacy``;
            a ``retries`` entry in the connection's ``config_kwargs`` wins over it.
        max_attempts: attempts per call, the first one included (default 10).
        threads: calls one shard runs at once (default 8).
        _max_recs: read at most this many items per API per shard (trying a config on a big estate).
        _page_size: items per page of the EC2 lists (default: the largest each API allows).

    Example config::

        plugins:
          myawscloud:
            plugin: cloudmarker.clouds.awscloud.AwsCloud
            params:
              conn_id: aws_audit
              organization: true
              role_name: CloudmarkerAudit
    """

    #: Shards one fetch task reads at once, and fetch tasks of one audit run at once.
    max_parallel_shards = 8

    def __init__(
        self,
        conn_id: str = "aws_default",
        regions: Sequence[str] | None = None,
        accounts: Sequence[str] | None = None,
        organization: bool = False,
        role_name: str | None = None,
        retry_mode: str = "adaptive",
        max_attempts: int = 10,
        threads: int = 8,
        _max_recs: int | None = None,
        _page_size: int | None = None,
    ):
        conn = _check_text("conn_id", conn_id, allow_none=False)
        self._regions = _check_list("regions", regions, "eu-west-1, us-east-1")
        self._accounts = _check_list("accounts", accounts, "'111122223333'")
        bad = [a for a in self._accounts or () if not (a.isdigit() and len(a) == _ACCOUNT_ID_LENGTH)]
        if bad:
            raise AwsConfigError(f"{PLUGIN} param accounts: {bad} are not 12-digit account ids; quote them in YAML")
        if not isinstance(organization, bool):
            raise AwsConfigError(f"{PLUGIN} param organization must be true or false, not {organization!r}")
        if organization and self._accounts:
            raise AwsConfigError(f"{PLUGIN}: set either param accounts or organization: true, not both")
        self._organization = organization
        role = _check_text("role_name", role_name)
        if organization and role is None:
            raise AwsConfigError(
                f"{PLUGIN} param role_name is required with organization: true; set it to the role "
                "to assume in each member account (such as CloudmarkerAudit)"
            )
        if retry_mode not in RETRY_MODES:
            raise AwsConfigError(
                f"{PLUGIN} param retry_mode must be one of {', '.join(RETRY_MODES)}, not {retry_mode!r}"
            )
        attempts = _check_int("max_attempts", max_attempts)
        self._threads = _check_int("threads", threads)
        self._max_recs = _check_int("_max_recs", _max_recs, allow_none=True)
        self._page_size = _check_int("_page_size", _page_size, allow_none=True)
        if self._page_size is not None and self._page_size < MIN_PAGE_SIZE:
            raise AwsConfigError(f"{PLUGIN} param _page_size must be at least {MIN_PAGE_SIZE} (EC2's minimum)")
        self._access = AwsAccess(PLUGIN, conn, role, retry_mode, attempts, max_pool_connections=self._threads)
        self._lock = threading.Lock()
        self._s3_clients: dict[tuple[str, str], Any] = {}
        self._read: list[str] = []

    # -- plugin protocol ----------------------------------------------------------------------------

    def shards(self) -> list[str]:
        """``<account>/global`` and ``<account>/<region>`` for every account and region to read."""
        shards = []
        for account in self._account_ids():
            shards.append(f"{account}/{GLOBAL}")
            shards.extend(f"{account}/{region}" for region in self._region_names(account))
        log.info("%s: %d shards (accounts x regions, and one global shard per account)", PLUGIN, len(shards))
        return shards

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield the records of one shard, or of every shard when not sharded."""
        shards = self.shards() if shard is None else [shard]
        jobs = []
        for item in shards:
            account, _, region = str(item).partition("/")
            if not account or not region:
                raise ValueError(f"{PLUGIN}: shard {item!r} is not <account>/<region> or <account>/global")
            jobs.extend(self._global_jobs(account) if region == GLOBAL else self._region_jobs(account, region))
        yield from util.stream_parallel(jobs, self._threads)
        with self._lock:
            self._read.extend(shards)

    def api_counts(self) -> dict[str, int]:
        """AWS API requests of this instance (retries included) and how many were throttled."""
        return {"api_calls": self._access.counter.calls, "throttled_calls": self._access.counter.throttled}

    def done(self) -> None:
        """Log what was read and the API calls it took."""
        counts = self.api_counts()
        log.info(
            "%s: read %s; %d API calls, %d throttled",
            PLUGIN,
            ", ".join(self._read) or "nothing",
            counts["api_calls"],
            counts["throttled_calls"],
        )

    # -- accounts and regions -------------------------------------------------------------------------

    def _account_ids(self) -> list[str]:
        if self._accounts:
            return list(self._accounts)
        own = self._access.own_account()
        if not self._organization:
            return [own]
        org = self._access.client(own, "organizations", "us-east-1")
        accounts = []
        for page in org.get_paginator("list_accounts").paginate():
            for account in page.get("Accounts") or []:
                if (account.get("State") or account.get("Status")) == "ACTIVE":
                    accounts.append(str(account["Id"]))
        log.info("%s: organization of %s has %d active accounts", PLUGIN, own, len(accounts))
        return accounts

    def _region_names(self, account: str) -> list[str]:
        if self._regions:
            return list(self._regions)
        ec2 = self._access.client(account, "ec2", self._access.hook().region_name or "us-east-1")
        return sorted(r["RegionName"] for r in ec2.describe_regions().get("Regions") or [])

    # -- one (account, region) -----------------------------------------------------------------------

    def _base_ext(self, account: str, region: str) -> dict[str, Any]:
        return {
            "cloud_type": aws.CLOUD_TYPE,
            "account_id": account,
            "account_alias": self._access.alias(account),
            "region": region,
        }

    def _record(self, record_type: str, raw: dict, ext: dict, reference: str, **com: Any) -> dict:
        return {
            "raw": raw,
            "ext": {**ext, "record_type": record_type},
            "com": {"cloud_type": aws.CLOUD_TYPE, "record_type": record_type, "reference": reference, **com},
        }

    def _pages(self, client: Any, operation: str, key: str) -> Iterator[dict]:
        config: dict[str, int] = {"PageSize": self._page_size or PAGE_SIZES[operation]}
        if self._max_recs:
            config["MaxItems"] = self._max_recs
        pages = client.get_paginator(operation).paginate(PaginationConfig=config)
        for page in pages:
            yield from page.get(key) or []

    def _region_jobs(self, account: str, region: str) -> list:
        ec2 = self._access.client(account, "ec2", region)
        ext = self._base_ext(account, region)
        partition = self._access.partition
        return [
            functools.partial(self._security_groups, ec2, ext, partition),
            functools.partial(self._instances, ec2, ext, partition),
            functools.partial(self._volumes, ec2, ext, partition),
            functools.partial(self._ebs_default, ec2, ext, partition),
        ]

    def _security_groups(self, ec2: Any, ext: dict, partition: str) -> Iterator[dict]:
        account, region = ext["account_id"], ext["region"]
        for group in self._pages(ec2, "describe_security_groups", "SecurityGroups"):
            group = aws.plain(group)
            reference = aws.arn("ec2", region, account, f"security-group/{group.get('GroupId')}", partition)
            yield self._record("security_group", group, ext, reference)
            yield from aws.firewall_rules(group, reference, ext)

    def _instances(self, ec2: Any, ext: dict, partition: str) -> Iterator[dict]:
        account, region = ext["account_id"], ext["region"]
        for reservation in self._pages(ec2, "describe_instances", "Reservations"):
            for instance in reservation.get("Instances") or []:
                raw = {**aws.plain(instance), "ReservationId": reservation.get("ReservationId")}
                reference = aws.arn("ec2", region, account, f"instance/{instance.get('InstanceId')}", partition)
                state = (instance.get("State") or {}).get("Name")
                record = self._record("instance", raw, ext, reference, state=state)
                record["com"]["record_type"] = "compute"
                yield record

    def _volumes(self, ec2: Any, ext: dict, partition: str) -> Iterator[dict]:
        account, region = ext["account_id"], ext["region"]
        for volume in self._pages(ec2, "describe_volumes", "Volumes"):
            raw = aws.plain(volume)
            instances = aws.volume_attachments(raw)
            reference = aws.arn("ec2", region, account, f"volume/{raw.get('VolumeId')}", partition)
            volume_ext = {**ext, "attached": bool(instances), "attached_instances": instances}
            yield self._record("ebs_volume", raw, volume_ext, reference, encrypted=raw.get("Encrypted") is True)

    def _ebs_default(self, ec2: Any, ext: dict, partition: str) -> Iterator[dict]:
        account, region = ext["account_id"], ext["region"]
        raw = aws.plain(ec2.get_ebs_encryption_by_default())
        reference = aws.arn("ec2", region, account, "ebs-encryption-by-default", partition)
        yield self._record(
            "ebs_encryption_by_default", raw, ext, reference, enabled=raw.get("EbsEncryptionByDefault") is True
        )

    # -- one account's global resources (S3) -----------------------------------------------------------

    def _global_jobs(self, account: str) -> list:
        return [functools.partial(self._s3, account)]

    def _s3(self, account: str) -> Iterator[dict]:
        partition = self._access.partition
        ext = self._base_ext(account, GLOBAL)
        control = self._access.client(account, "s3control", self._access.hook().region_name or "us-east-1")
        try:
            block = control.get_public_access_block(AccountId=account).get("PublicAccessBlockConfiguration")
        except Exception as exc:
            if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            block = None
        reference = aws.arn("s3", "", account, "public-access-block", partition)
        yield self._record(
            "s3_account_public_access_block",
            {"AccountId": account, "PublicAccessBlockConfiguration": block},
            ext,
            reference,
            block=aws.effective_block(block, None),
        )
        s3 = self._s3_client(account, self._access.hook().region_name or "us-east-1")
        pages = s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": BUCKETS_PAGE})
        buckets = [bucket for page in pages for bucket in page.get("Buckets") or []]
        failures: list[tuple[str, BaseException]] = []
        jobs = [functools.partial(self._bucket, account, bucket, block, ext, failures) for bucket in buckets]
        yield from util.stream_parallel(jobs[: self._max_recs], self._threads)
        if failures:
            names = sorted(name for name, _ in failures)
            raise ItemReadError(
                f"{PLUGIN}: {len(names)} of {len(buckets)} S3 buckets of account {account} could not be read "
                f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}): {failures[0][1]}"
            )

    def _s3_client(self, account: str, region: str) -> Any:
        with self._lock:
            client = self._s3_clients.get((account, region))
        if client is None:
            client = self._access.client(account, "s3", region)
            with self._lock:
                self._s3_clients[(account, region)] = client
        return client

    def _bucket(self, account: str, bucket: dict, account_block: Any, ext: dict, failures: list) -> Iterator[dict]:
        name = str(bucket.get("Name"))
        try:
            raw = self._bucket_facts(account, bucket, account_block)
        except Exception as exc:
            if error_code(exc) == "NoSuchBucket":
                return  # deleted since it was listed
            log.warning("%s: could not read S3 bucket %s of account %s: %s", PLUGIN, name, account, exc)
            with self._lock:
                failures.append((name, exc))
            return
        exposure = aws.bucket_exposure(raw)
        bucket_ext = {**ext, "region": raw["Region"]}
        yield self._record(
            "s3_bucket",
            raw,
            bucket_ext,
            aws.bucket_arn(name, self._access.partition),
            public=exposure["public"],
            public_via=exposure["via"],
        )

    def _bucket_facts(self, account: str, bucket: dict, account_block: Any) -> dict:
        """The bucket with its region, public access block, policy status and ACL (None: not configured)."""
        name = str(bucket.get("Name"))
        region = bucket.get("BucketRegion")
        if not region:
            location = self._s3_client(account, "us-east-1").get_bucket_location(Bucket=name)
            region = location.get("LocationConstraint") or "us-east-1"
            region = "eu-west-1" if region == "EU" else region
        s3 = self._s3_client(account, region)
        facts: dict[str, Any] = {**aws.plain(bucket), "Region": region, "AccountPublicAccessBlock": account_block}
        for operation, answer_key, fact in (
            ("get_public_access_block", "PublicAccessBlockConfiguration", "PublicAccessBlock"),
            ("get_bucket_policy_status", "PolicyStatus", "PolicyStatus"),
        ):
            try:
                facts[fact] = getattr(s3, operation)(Bucket=name)[answer_key]
            except Exception as exc:
                if error_code(exc) != NOT_CONFIGURED[operation]:
                    raise
                facts[fact] = None
        acl = aws.plain(s3.get_bucket_acl(Bucket=name))
        facts["Acl"] = {"Owner": acl.get("Owner"), "Grants": acl.get("Grants") or []}
        return aws.plain(facts)

"""Benchmark: AwsCloud over real HTTP against moto (in a child process) behind a proxy adding latency per call.

The issue's case: an organization of 3 accounts (the management account and 2 members) x 17
regions, 50 ms per call. Read as the audit DAG reads it: ``shards()`` once (its own task), then
one fresh AwsCloud per shard, ``AwsCloud.max_parallel_shards`` at once in one process (one fetch
task reading its group), here in threads. Printed: API calls per (account, region) shard and per
global shard, the wall time of the fetch part, and the ideal at that concurrency.

The ideal counts round trips on the critical path, each costing the latency: a region shard's four
listings run at once (1 round trip); a global shard is s3control, ListBuckets, then the four calls
of each bucket in turn, buckets at once (2 + 4); each account costs AssumeRole and ListAccountAliases
once (2), the process one GetCallerIdentity (1, before anything else). ideal = (1 + sum / C) x
latency. CPU is not in it (moto's, and the client's: botocore builds a client class per client,
about 50 ms CPU for an EC2 client, one per account and region): the same run with no added
latency is printed beside, with this process's CPU time, and the latency part
``wall(latency) - wall(0)`` is compared with the ideal (target 1.5 x).

moto is warmed first (it builds each region's default VPC on first touch, about a second per
account and region on this machine), so the measured runs read a settled estate.

    python bench/bench_aws.py                       # the issue's case
    python bench/bench_aws.py --regions 5 --latency 0.1
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.aws import MotoServer  # noqa: E402

from airflow_cloudmarker.aws import session as aws_session  # noqa: E402
from airflow_cloudmarker.clouds.awscloud import AwsCloud  # noqa: E402

REGIONS17 = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]  # fmt: skip
ROLE = "CloudmarkerAudit"


def build(server: MotoServer, members: int, regions: list[str], buckets: int, groups: int) -> list[str]:
    org = server.client("organizations")
    org.create_organization(FeatureSet="ALL")
    accounts = [
        org.create_account(AccountName=f"m{i}", Email=f"m{i}@example.com")["CreateAccountStatus"]["AccountId"]
        for i in range(members)
    ]
    for account in [*accounts, "123456789012"]:
        s3 = server.account_client(account, "s3", "us-east-1", ROLE)
        for b in range(buckets):
            s3.create_bucket(Bucket=f"b-{account}-{b}")
        for region in regions:  # touch every region: moto builds its default VPC now, not in the measured run
            ec2 = server.account_client(account, "ec2", region, ROLE)
            for g in range(groups):
                ec2.create_security_group(GroupName=f"g{g}", Description="bench")
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=1)
    return accounts


def fetch_all(params: dict) -> tuple[float, float, list[str], dict[str, int], int]:
    """shards() (timed apart), then every shard on a fresh instance, max_parallel_shards at once."""
    for cache in (aws_session._SESSIONS, aws_session._OWN, aws_session._ALIASES):
        cache.clear()  # a fetch task is a fresh process
    started = time.monotonic()
    shards = AwsCloud(**params).shards()
    listed = time.monotonic()
    for cache in (aws_session._SESSIONS, aws_session._OWN, aws_session._ALIASES):
        cache.clear()
    counts: dict[str, int] = {}

    def fetch(shard: str) -> int:
        cloud = AwsCloud(**params)
        records = sum(1 for _ in cloud.read(shard))
        cloud.done()
        counts[shard] = cloud.api_counts()["api_calls"]
        return records

    cpu = time.process_time()
    with ThreadPoolExecutor(AwsCloud.max_parallel_shards) as pool:
        records = sum(pool.map(fetch, shards))
    counts["cpu"] = time.process_time() - cpu  # this process: the plugin and the proxy, not moto
    return listed - started, time.monotonic() - listed, shards, counts, records


def ideal(shards: list[str], accounts: int, concurrency: int, latency: float) -> float:
    region_shards = sum(1 for s in shards if not s.endswith("/global"))
    global_shards = len(shards) - region_shards
    work = region_shards * 1 + global_shards * (2 + 4) + accounts * 2
    return (1 + work / concurrency) * latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2, help="member accounts besides the management one")
    parser.add_argument("--regions", type=int, default=17)
    parser.add_argument("--buckets", type=int, default=3, help="S3 buckets per account")
    parser.add_argument("--groups", type=int, default=3, help="security groups per account and region")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    regions = REGIONS17[: args.regions]
    with MotoServer(own_process=True) as server:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = server.connection_json()
        started = time.monotonic()
        build(server, args.members, regions, args.buckets, args.groups)
        print(f"estate built (and moto warmed) in {time.monotonic() - started:.1f} s")
        params = {"organization": True, "role_name": ROLE, "regions": regions}
        results = {}
        for latency in (0.0, args.latency):
            server.latency = latency
            best = None
            for _ in range(args.repeat):
                run = fetch_all(params)
                best = run if best is None or run[1] < best[1] else best
            results[latency] = best
    accounts = args.members + 1
    listing, wall, shards, counts, records = results[args.latency]
    _, wall0, _, counts0, _ = results[0.0]
    cpu, cpu0 = counts.pop("cpu"), counts0.pop("cpu")
    concurrency = AwsCloud.max_parallel_shards
    best_case = ideal(shards, accounts, concurrency, args.latency)
    region_calls = sorted(v for k, v in counts.items() if not k.endswith("/global"))
    global_calls = sorted(v for k, v in counts.items() if k.endswith("/global"))
    print(f"{accounts} accounts x {len(regions)} regions = {len(shards)} shards, {records} records")
    print(f"API calls per (account, region) shard: min {region_calls[0]}, max {region_calls[-1]}")
    print(
        "  (AssumeRole, ListAccountAliases: once per account; GetCallerIdentity: once; by the first shard needing them)"
    )
    print(f"API calls per global shard ({args.buckets} buckets): {global_calls}")
    print(f"API calls in all: {sum(counts.values())} (+ shards(): listed in {listing:.2f} s)")
    print(f"concurrency: {concurrency} shards at once, {AwsCloud(**params)._threads} calls at once per shard")
    print(f"wall, {args.latency * 1000:.0f} ms per call: {wall:.2f} s (CPU of this process {cpu:.2f} s)")
    print(f"wall, no added latency: {wall0:.2f} s (CPU of this process {cpu0:.2f} s: boto3 clients, parsing, proxy)")
    print(f"ideal at that concurrency (latency only): {best_case:.2f} s")
    print(f"latency part: {wall - wall0:.2f} s = {(wall - wall0) / best_case:.2f} x ideal (target <= 1.5)")
    print(f"wall / (ideal + the run without latency): {wall / (best_case + wall0):.2f}")


if __name__ == "__main__":
    main()

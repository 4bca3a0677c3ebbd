"""Benchmark: AwsCloud over real HTTP against moto (in a child process) behind a proxy adding latency per call.

The issue's case: an organization of 3 accounts (the management account and 2 members) x 17
regions, 50 ms per call. Read as the audit DAG reads it: ``shards()`` once (its own task), then
one fresh AwsCloud per shard, ``--shards`` of them at once in one process (one fetch task reading
its group; default ``AwsCloud.max_parallel_shards``), here in threads. Every run starts as a new
fetch task process does: no session, hook, identity, alias or parsed service model kept
(``session.reset()``), and no garbage of the previous run left for the collector.

Printed: the API calls per (account, region) shard and per global shard, then for each run the
wall time of the fetch and the CPU seconds (user + sys) of this process (the plugin: moto and the
proxy are in the child) and of the child, and the load average. The ideal is the latency alone at
the chosen concurrency: ``calls / C x latency``, where C is the calls one fetch task has in
flight at most, ``shards x min(threads, 4)`` (a region shard makes its 4 calls at once; the
proxy's peak is printed beside it). Target: wall <= 1.5 x ideal. The same fetch with no added
latency is the CPU floor: it is printed too, so a ratio can be told apart from a slow machine.

moto is warmed first (it builds each region's default VPC on first touch, about a second per
account and region on this machine), so the measured runs read a settled estate.

    python bench/bench_aws.py                       # the issue's case
    python bench/bench_aws.py --shards 16 --threads 4 --repeat 5
    python bench/bench_aws.py --regions 5 --latency 0.1
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.aws import MotoProcess  # noqa: E402

from airflow_cloudmarker.aws import session as aws_session  # noqa: E402
from airflow_cloudmarker.clouds.awscloud import AwsCloud  # noqa: E402

REGIONS17 = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]  # fmt: skip
ROLE = "CloudmarkerAudit"
#: The calls a region shard makes at once (its four listings).
REGION_CALLS = 4


def build(server: MotoProcess, members: int, regions: list[str], buckets: int, groups: int) -> list[str]:
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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fetch_all(server: MotoProcess, params: dict, shards_at_once: int) -> dict:
    """shards() (not timed), then every shard on a fresh instance, ``shards_at_once`` at once."""
    aws_session.reset()
    shards = AwsCloud(**params).shards()
    aws_session.reset()  # a fetch task is a fresh process
    gc.collect()  # and has none of the previous run's garbage to collect
    counts: dict[str, int] = {}

    def fetch(shard: str) -> int:
        cloud = AwsCloud(**params)
        records = sum(1 for _ in cloud.read(shard))
        cloud.done()
        counts[shard] = cloud.api_counts()["api_calls"]
        return records

    server.reset_counts()
    before, cpu, started = server.stats(), cpu_seconds(), time.monotonic()
    with ThreadPoolExecutor(shards_at_once) as pool:
        records = sum(pool.map(fetch, shards))
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
    stats = server.stats()
    return {
        "wall": wall,
        "cpu": cpu,
        "proxy_cpu": stats["cpu"] - before["cpu"],
        "moto_cpu": stats["moto_cpu"] - before["moto_cpu"],
        "peak": stats["peak_in_flight"],
        "counts": counts,
        "records": records,
        "load": os.getloadavg()[0],
    }


def report(runs: dict, latency: float, shards_at_once: int, threads: int, calls: int) -> None:
    """The ideal at this concurrency, each run's wall (and its ratio to the ideal) and CPU, and their ranges."""
    concurrency = shards_at_once * min(threads, REGION_CALLS)
    ideal = calls / concurrency * latency
    peak = max(r["peak"] for r in runs[latency])
    print(
        f"concurrency C = {shards_at_once} shards at once x {min(threads, REGION_CALLS)} calls at once per region "
        f"shard (threads {threads}) = {concurrency}; peak in flight at the proxy {peak}"
    )
    ms = latency * 1000
    print(f"  ideal = {calls} / {concurrency} x {ms:.0f} ms = {ideal:.2f} s; target wall <= {1.5 * ideal:.2f} s")
    for lat, label in ((0.0, "no added latency"), (latency, f"{latency * 1000:.0f} ms per call")):
        for run in runs[lat]:
            ratio = f" = {run['wall'] / ideal:.2f} x ideal" if lat else ""
            print(
                f"  {label}: wall {run['wall']:.2f} s{ratio}; CPU {run['cpu']:.2f} s "
                f"(proxy {run['proxy_cpu']:.2f} s, moto {run['moto_cpu']:.2f} s); load {run['load']:.1f}"
            )
    walls = sorted(r["wall"] for r in runs[latency])
    cpus = sorted(r["cpu"] for r in runs[latency])
    print(
        f"  => wall {walls[0]:.2f}-{walls[-1]:.2f} s = {walls[0] / ideal:.2f}-{walls[-1] / ideal:.2f} x ideal "
        f"(target <= 1.5); CPU {cpus[0]:.2f}-{cpus[-1]:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2, help="member accounts besides the management one")
    parser.add_argument("--regions", type=int, default=17)
    parser.add_argument("--buckets", type=int, default=3, help="S3 buckets per account")
    parser.add_argument("--groups", type=int, default=3, help="security groups per account and region")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--sweep",
        default=None,
        help="SHARDSxTHREADS,... (such as 2x4,8x1,8x4): shards at once and AwsCloud param threads to try in turn; "
        "default: AwsCloud.max_parallel_shards and the default threads",
    )
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
    params = {"organization": True, "role_name": ROLE, "regions": regions}
    default = f"{AwsCloud.max_parallel_shards}x{AwsCloud(**params)._threads}"
    configs = [tuple(int(n) for n in item.split("x")) for item in (args.sweep or default).split(",")]
    with MotoProcess() as server:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = server.connection_json()
        started = time.monotonic()
        build(server, args.members, regions, args.buckets, args.groups)
        print(f"estate built (and moto warmed) in {time.monotonic() - started:.1f} s")
        for n, (shards_at_once, threads) in enumerate(configs):
            runs = {}
            for latency in (0.0, args.latency):
                server.latency = latency
                runs[latency] = [
                    fetch_all(server, {**params, "threads": threads}, shards_at_once) for _ in range(args.repeat)
                ]
            counts = runs[args.latency][0]["counts"]
            calls = sum(counts.values())
            if n == 0:
                region_calls = sorted(v for k, v in counts.items() if not k.endswith("/global"))
                global_calls = sorted(v for k, v in counts.items() if k.endswith("/global"))
                print(
                    f"{args.members + 1} accounts x {len(regions)} regions = {len(counts)} shards, "
                    f"{runs[args.latency][0]['records']} records"
                )
                print(f"API calls per (account, region) shard: min {region_calls[0]}, max {region_calls[-1]}")
                print(f"API calls per global shard ({args.buckets} buckets): {global_calls}")
                print(
                    "  (AssumeRole, ListAccountAliases: once per account; GetCallerIdentity: once; "
                    "by the first shard needing them)"
                )
                print(f"API calls in all: {calls} (shards() not counted)")
            report(runs, args.latency, shards_at_once, threads, calls)


if __name__ == "__main__":
    main()

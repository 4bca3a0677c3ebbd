"""Benchmark AzCloud and AzVM fetches against the local ARM server with 50 ms latency per call.

Prints, for each mode, the fetch wall time, the number of ARM calls, the ideal time
(calls x latency / concurrency) and their ratio (target <= 1.5), and checks that AzCloud made exactly
one list call per subscription per resource type (plus nextLink pages).

    python bench/bench_azure.py [--subscriptions 20] [--latency 0.05] [--threads 16]
    python bench/bench_azure.py --rdbms   # AzPostgres and AzCloud with the database estate instead
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from servers.azure import LIST_PATHS, serve_in_process  # noqa: E402

from airflow_cloudmarker.clouds.azcloud import AzCloud  # noqa: E402
from airflow_cloudmarker.clouds.azpostgres import AzPostgres  # noqa: E402
from airflow_cloudmarker.clouds.azvm import AzVM  # noqa: E402


def report(name: str, seconds: float, calls: int, latency: float, concurrency: int, records: int) -> float:
    ideal = calls * latency / concurrency
    ratio = seconds / ideal
    print(
        f"{name:<44} {seconds:6.2f} s  {calls:4d} calls  {records:5d} records  concurrency {concurrency:3d}  "
        f"ideal {ideal:5.2f} s  ratio {ratio:4.2f} {'OK' if ratio <= 1.5 else 'SLOW'}"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--rdbms", action="store_true", help="measure AzPostgres and AzCloud with databases")
    args = parser.parse_args()
    if args.rdbms:
        return bench_rdbms(args)
    # The SDK modules are large: import them before timing, as a worker that ran a task before would have.
    import azure.mgmt.compute  # noqa: F401
    import azure.mgmt.network  # noqa: F401
    import azure.mgmt.resource.resources  # noqa: F401
    import azure.mgmt.storage  # noqa: F401

    ok = True
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    server = context.Process(
        target=serve_in_process,
        args=(tempfile.mkdtemp(), info),
        kwargs={"subscriptions": args.subscriptions, "vms": 3, "page_size": args.page_size, "latency": args.latency},
        daemon=True,
    )
    server.start()
    try:
        url, ca_file, tenant, client, secret, subs = info.get(timeout=60)
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        params = dict(tenant=tenant, client=client, secret=secret, authority_host=url, resource_manager_url=url)

        def arm_calls(reset: bool = False) -> list:
            response = requests.request("POST" if reset else "GET", f"{url}/_test/calls", timeout=30)
            return response.json()

        warm = AzCloud(**params)
        list(warm.read(subs[0]))  # warm up: first-use costs of the SDK clients; not timed
        arm_calls(reset=True)

        # 1. One fetch task reading every subscription (read() without shards) on `threads` threads.
        cloud = AzCloud(threads=args.threads, **params)
        started = time.monotonic()
        records = sum(1 for _ in cloud.read())
        seconds = time.monotonic() - started
        arm = arm_calls(reset=True)
        ratio = report("AzCloud, one task, threads", seconds, len(arm), args.latency, args.threads, records)
        ok &= ratio <= 1.5
        for sub in subs:
            for path in LIST_PATHS:
                n = sum(1 for _, p, _ in arm if p.lower() == f"/subscriptions/{sub}/{path}")
                ok &= n == 1
        list_calls = sum(1 for _, p, _ in arm if p.count("/") > 2)
        print(f"  list calls per subscription per type: {list_calls / (len(subs) * len(LIST_PATHS)):.2f}")

        # 2. As the DAG runs it: shards() then one read(shard) per mapped task, max_parallel_shards at once.
        started = time.monotonic()
        shards = AzCloud(**params).shards()
        with ThreadPoolExecutor(AzCloud.max_parallel_shards) as pool:
            records = sum(pool.map(lambda s: sum(1 for _ in AzCloud(threads=9, **params).read(s)), shards))
        seconds = time.monotonic() - started
        arm = arm_calls(reset=True)
        # shards() is one call on its own; then up to max_parallel_shards x 9 calls at once
        concurrency = AzCloud.max_parallel_shards * 9
        ideal = args.latency + (len(arm) - 1) * args.latency / concurrency
        print(
            f"{'AzCloud, mapped tasks (emulated, threads)':<44} {seconds:6.2f} s  {len(arm):4d} calls  "
            f"{records:5d} records  {AzCloud.max_parallel_shards} tasks x 9 threads  ideal {ideal:5.2f} s  "
            f"ratio {seconds / ideal:4.2f} (each task also authenticates: +1 token call per task)"
        )

        # 3. AzVM: one instance view per VM (the VM list of each subscription comes first).
        started = time.monotonic()
        records = sum(1 for _ in AzVM(threads=args.threads, **params).read())
        seconds = time.monotonic() - started
        arm = arm_calls(reset=True)
        report("AzVM, one task, threads", seconds, len(arm), args.latency, args.threads, records)
    finally:
        server.kill()
    print("PASS" if ok else "FAIL: see ratios and call counts above")
    return 0 if ok else 1


def bench_rdbms(args: argparse.Namespace) -> int:
    """AzPostgres and AzCloud over the estate of ``servers.azure_rdbms`` (3 PostgreSQL servers, 2 MySQL
    servers and 2 web apps per subscription): wall time against calls / threads x latency, and calls."""
    import azure.mgmt.mysqlflexibleservers  # noqa: F401
    import azure.mgmt.postgresqlflexibleservers  # noqa: F401
    import azure.mgmt.web  # noqa: F401
    from servers import azure_rdbms

    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    server = context.Process(
        target=azure_rdbms.serve_in_process,
        args=(tempfile.mkdtemp(), info),
        kwargs={"subscriptions": args.subscriptions, "vms": 3, "page_size": args.page_size, "latency": args.latency},
        daemon=True,
    )
    server.start()
    ok = True
    try:
        url, ca_file, tenant, client, secret, subs = info.get(timeout=60)
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        params = dict(tenant=tenant, client=client, secret=secret, authority_host=url, resource_manager_url=url)

        def arm_calls(reset: bool = False) -> list:
            return requests.request("POST" if reset else "GET", f"{url}/_test/calls", timeout=30).json()

        for cls in (AzPostgres, AzCloud):  # warm up: first-use costs of the SDK clients; not timed
            list(cls(**params).read(subs[0]))
        arm_calls(reset=True)
        for name, cls in (("AzPostgres", AzPostgres), ("AzCloud", AzCloud)):
            cloud = cls(threads=args.threads, **params)
            started = time.monotonic()
            records = sum(1 for _ in cloud.read())
            seconds = time.monotonic() - started
            arm = arm_calls(reset=True)
            ratio = report(
                f"{name}, one task, threads (databases)", seconds, len(arm), args.latency, args.threads, records
            )
            ok &= ratio <= 1.5
            per_item = sum(1 for _, p, _ in arm if "/configurations" in p)
            print(f"  {len(arm)} calls: {len(arm) - per_item} subscription and list calls, {per_item} parameter calls")
            if cls is AzPostgres:
                # Steps that wait for each other: 3 login round trips (discovery, OpenID metadata, token;
                # not ARM calls), the subscription list, the server lists, then the parameter reads.
                waves = 3 + 1 + -(-len(subs) // args.threads) + -(-per_item // args.threads)
                print(
                    f"  dependency floor {waves} x latency = {waves * args.latency:.2f} s: "
                    f"measured / floor {seconds / (waves * args.latency):.2f}"
                )
    finally:
        server.kill()
    print("PASS" if ok else "FAIL: see ratios above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

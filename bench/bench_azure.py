"""Benchmark every Azure cloud plugin against the local Azure server (the whole test tenant, 50 ms per call).

The server runs in its own process (its CPU apart from the client's) and holds every resource
family's estate (``tests/servers/azure_tenant.py``). For each plugin, one fetch reads every
subscription on ``threads`` threads; printed: wall time, calls (ARM and Key Vault data plane, not
the logins), records, the ideal time (calls / threads x latency, the issue's measure) and the ratio
(target <= 1.5), plus the ratio against the ideal after the steps no client can overlap (the three
login round trips and the subscription list, one after the other), and the client's CPU time.
It also checks that AzCloud made exactly one list call per subscription per resource type.

    python bench/bench_azure.py [--subscriptions 20] [--latency 0.05] [--threads 16] [--plugins AzKV,AzSQL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from servers import azure_tenant  # noqa: E402
from servers.azure import LIST_PATHS  # noqa: E402

from airflow_cloudmarker.clouds.azcloud import AzCloud  # noqa: E402
from airflow_cloudmarker.clouds.azdisk import AzDisk  # noqa: E402
from airflow_cloudmarker.clouds.azkv import AzKV  # noqa: E402
from airflow_cloudmarker.clouds.azmonitor import AzMonitor  # noqa: E402
from airflow_cloudmarker.clouds.azpostgres import AzPostgres  # noqa: E402
from airflow_cloudmarker.clouds.azsql import AzSQL  # noqa: E402
from airflow_cloudmarker.clouds.azstorageaccount import AzStorageAccount  # noqa: E402
from airflow_cloudmarker.clouds.azvm import AzVM  # noqa: E402
from airflow_cloudmarker.clouds.azwebapp import AzWebApp  # noqa: E402

PLUGINS = (AzCloud, AzVM, AzDisk, AzKV, AzMonitor, AzPostgres, AzSQL, AzStorageAccount, AzWebApp)
#: Round trips before any parallel call can start: login discovery, OpenID metadata, token, subscriptions
SEQUENTIAL_STEPS = 4


def kind(path: str) -> str:
    """A call's kind for the per-subscription breakdown (its path without the subscription and names)."""
    if path.startswith("/vaults/"):
        return "Key Vault data plane " + path.rstrip("/").rsplit("/", 1)[1]
    parts = path.split("/")
    if len(parts) <= 3:
        return "subscription" if len(parts) == 3 else "subscription list"
    return "/".join(p for i, p in enumerate(parts[3:]) if i % 2 == 0 or "." in p)


def start_server(args: argparse.Namespace) -> tuple[multiprocessing.Process, tuple]:
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    server = context.Process(
        target=azure_tenant.serve_in_process,
        args=(tempfile.mkdtemp(), info),
        kwargs={"subscriptions": args.subscriptions, "vms": 3, "page_size": args.page_size, "latency": args.latency},
        daemon=True,
    )
    server.start()
    return server, info.get(timeout=120)


def measure(cls: type, params: dict, args: argparse.Namespace, calls) -> tuple[bool, list]:
    plugin = cls(threads=args.threads, **params)
    started, cpu = time.monotonic(), time.process_time()
    records = sum(1 for _ in plugin.read())
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    plugin.done()
    made = calls(reset=True)
    ideal = len(made) * args.latency / args.threads
    after_start = SEQUENTIAL_STEPS * args.latency + max(0, len(made) - 1) * args.latency / args.threads
    ratio = seconds / ideal
    print(
        f"{cls.__name__:<17} {seconds:6.2f} s  {len(made):4d} calls  {records:5d} records  ideal {ideal:5.2f} s  "
        f"ratio {ratio:4.2f} {'OK' if ratio <= 1.5 else 'SLOW'}  | after the sequential start {after_start:4.2f} s: "
        f"ratio {seconds / after_start:4.2f}  | client CPU {cpu:4.2f} s"
    )
    per = Counter(kind(p) for _, p, _ in made)
    print("    per subscription: " + ", ".join(f"{n / args.subscriptions:g} {k}" for k, n in sorted(per.items())))
    return ratio <= 1.5, made


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--plugins", default=",".join(c.__name__ for c in PLUGINS))
    args = parser.parse_args()
    chosen = [c for c in PLUGINS if c.__name__ in args.plugins.split(",")]
    server, (url, ca_file, tenant, client, secret, subs) = start_server(args)
    ok = True
    try:
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        params = dict(tenant=tenant, client=client, secret=secret, authority_host=url, resource_manager_url=url)

        def calls(reset: bool = False) -> list:
            response = requests.request("POST" if reset else "GET", f"{url}/_test/all-calls", timeout=30)
            return [c for c in response.json() if c[1] != "/_test/all-calls"]

        for cls in chosen:  # warm up: SDK imports and first-use costs, as in a worker that ran a task before
            list(cls(**params).read(subs[0]))
        calls(reset=True)
        load = os.getloadavg()[0]
        print(
            f"{len(subs)} subscriptions, {args.latency * 1000:g} ms per call, {args.threads} threads; load {load:.2f}"
        )
        for cls in chosen:
            good, made = measure(cls, params, args, calls)
            ok &= good
            if cls is AzCloud:
                for sub in subs:
                    for path in LIST_PATHS:
                        ok &= sum(1 for _, p, _ in made if p.lower() == f"/subscriptions/{sub}/{path}") == 1
    finally:
        server.kill()
    print("PASS" if ok else "FAIL: see ratios and call counts above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

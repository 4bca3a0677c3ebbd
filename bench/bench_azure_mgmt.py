"""Benchmark AzDisk, AzStorageAccount, AzWebApp and AzSQL against the local ARM server with 50 ms per call.

For each plugin, one fetch reading every subscription (``read()`` without shards) on ``threads``
threads, as one fetch task would, authentication included: the wall time, the ARM calls made, the
ideal time (calls x latency / threads) and their ratio. With few calls per subscription the ideal
is out of reach: some calls must wait for others (the two login calls, the subscription list, each
subscription's list calls, in waves of ``threads``, then the per-item calls). Those waves are the
critical path; the bound is the longer of it and the ideal, and the target is a ratio <= 1.5 to it.

    python bench/bench_azure_mgmt.py [--subscriptions 20] [--latency 0.05] [--threads 16] [--repeat 3]

``measure_azdisk`` and its siblings are what another benchmark can call with a running server.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from servers import azure_disks, azure_sql, azure_storage, azure_web  # noqa: E402
from servers.azure import FakeAzure  # noqa: E402

from airflow_cloudmarker.clouds.azdisk import AzDisk  # noqa: E402
from airflow_cloudmarker.clouds.azsql import AzSQL  # noqa: E402
from airflow_cloudmarker.clouds.azstorageaccount import AzStorageAccount  # noqa: E402
from airflow_cloudmarker.clouds.azwebapp import AzWebApp  # noqa: E402

FAMILIES = (azure_disks, azure_storage, azure_web, azure_sql)


@dataclass(frozen=True)
class Server:
    """A running benchmark server: where it is and the plugin params that reach it."""

    url: str
    params: dict[str, Any]
    latency: float

    def arm_calls(self, reset: bool = False) -> list:
        """The ARM calls since the last reset (``reset`` clears them after reading)."""
        response = requests.request("POST" if reset else "GET", f"{self.url}/_test/calls", timeout=30)
        return response.json()


@dataclass(frozen=True)
class Result:
    """One plugin's measurement."""

    name: str
    seconds: float
    calls: int
    records: int
    threads: int
    ideal: float
    stages: int

    @property
    def ratio(self) -> float:
        """Wall time over the ideal."""
        return self.seconds / self.ideal

    def bound(self, latency: float) -> float:
        """The least wall time any number of threads allows: the ideal, or the critical path if longer."""
        return max(self.ideal, self.stages * latency)

    def line(self, latency: float) -> str:
        """The result as one line of the report."""
        bound = self.bound(latency)
        return (
            f"{self.name:<18} {self.seconds:6.2f} s  {self.calls:4d} calls  {self.records:5d} records  "
            f"threads {self.threads:3d}  ideal {self.ideal:5.2f} s  ratio {self.ratio:5.2f}  "
            f"critical path {self.stages:2d} calls: bound {bound:4.2f} s  ratio {self.seconds / bound:4.2f} "
            f"{'OK' if self.seconds / bound <= 1.5 else 'SLOW'}"
        )


def serve_populated(directory: str, info: Any, **kwargs: Any) -> None:
    """Run a FakeAzure filled with every family's estate until killed; send (url, ca, tenant, client, secret)."""
    latency = kwargs.pop("latency", 0.0)
    with FakeAzure(Path(directory), **kwargs) as az:
        for family in FAMILIES:
            family.populate(az)
        az.latency = latency
        info.put((az.url, az.ca_file, az.tenant, az.client, az.secret))
        threading.Event().wait()


def measure(cls: type, server: Server, threads: int, waves: int) -> Result:
    """Read every subscription with a fresh ``cls`` (authentication included, as in a fetch task)."""
    server.arm_calls(reset=True)
    cloud = cls(threads=threads, **server.params)
    started = time.monotonic()
    records = sum(1 for _ in cloud.read())
    seconds = time.monotonic() - started
    cloud.done()
    calls = len(server.arm_calls(reset=True))
    ideal = calls * server.latency / threads
    return Result(cls.__name__, seconds, calls, records, threads, ideal, waves)


def _waves(jobs: int, threads: int) -> int:
    return math.ceil(jobs / threads) if jobs else 0


def measure_azdisk(server: Server, threads: int, subscriptions: int) -> Result:
    """AzDisk: one disk list call per subscription, nothing per disk."""
    return measure(AzDisk, server, threads, 3 + _waves(subscriptions, threads))


def measure_azstorageaccount(server: Server, threads: int, subscriptions: int) -> Result:
    """AzStorageAccount: one storage account list call per subscription, nothing per account."""
    return measure(AzStorageAccount, server, threads, 3 + _waves(subscriptions, threads))


def measure_azwebapp(server: Server, threads: int, subscriptions: int) -> Result:
    """AzWebApp: one site list call per subscription, then one configuration call per site."""
    sites = subscriptions * len(azure_web.SITES)
    return measure(AzWebApp, server, threads, 3 + _waves(subscriptions, threads) + _waves(sites, threads))


def measure_azsql(server: Server, threads: int, subscriptions: int) -> Result:
    """AzSQL: per subscription a server list then one database list per server, then one TDE call per database."""
    listing = 1 + len(azure_sql.SERVERS)  # sequential within a subscription's listing
    databases = subscriptions * sum(len([n for n in s if n != "master"]) for s in azure_sql.SERVERS.values())
    return measure(AzSQL, server, threads, 3 + _waves(subscriptions, threads) * listing + _waves(databases, threads))


MEASURES = (measure_azdisk, measure_azstorageaccount, measure_azwebapp, measure_azsql)


def main() -> int:
    """Start the server in its own process, measure each plugin, print one line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="runs per plugin; the fastest is reported")
    args = parser.parse_args()
    # The SDK modules are large: import them before timing, as a worker that ran a task before would have.
    import azure.mgmt.compute  # noqa: F401
    import azure.mgmt.sql  # noqa: F401
    import azure.mgmt.storage  # noqa: F401
    import azure.mgmt.web  # noqa: F401

    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    process = context.Process(
        target=serve_populated,
        args=(tempfile.mkdtemp(), info),
        kwargs={"subscriptions": args.subscriptions, "latency": args.latency},
        daemon=True,
    )
    process.start()
    try:
        url, ca_file, tenant, client, secret = info.get(timeout=60)
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        params = dict(tenant=tenant, client=client, secret=secret, authority_host=url, resource_manager_url=url)
        server = Server(url, params, args.latency)
        for cls in (AzDisk, AzStorageAccount, AzWebApp, AzSQL):  # warm up each SDK client once; not timed
            list(cls(_max_subs=1, **params).read())
        # The fastest of a few runs: the machine is shared, and a busy neighbour only ever adds time.
        results = [
            min((fn(server, args.threads, args.subscriptions) for _ in range(args.repeat)), key=lambda r: r.seconds)
            for fn in MEASURES
        ]
    finally:
        process.kill()
    for result in results:
        print(result.line(args.latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())

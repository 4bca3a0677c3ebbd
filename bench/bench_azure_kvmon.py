"""Benchmark AzKV and AzMonitor against the local ARM + Key Vault server with 50 ms latency per call.

The server (with the key-vault and monitor estates of tests/servers/azure_keyvault.py and
azure_monitor.py) runs in its own process so that its CPU does not compete with the client's. For each
plugin: the fetch wall time of one task reading every subscription on ``threads`` threads, the number
of calls (ARM, Key Vault data plane and login), the ideal time (calls x latency / threads) and their
ratio (target <= 1.5), and the calls per subscription. Key Vault's challenge (a 401 per data-plane
client and vault host) is cached per process: the warm-up meets it, the timed runs do not (in a fresh
task process each vault costs two calls more).

    python bench/bench_azure_kvmon.py [--subscriptions 20] [--latency 0.05] [--threads 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from servers import azure_keyvault, azure_monitor  # noqa: E402
from servers.azure import FakeAzure  # noqa: E402

from airflow_cloudmarker.clouds.azkv import AzKV  # noqa: E402
from airflow_cloudmarker.clouds.azmonitor import AzMonitor  # noqa: E402


def serve(directory: str, info, subscriptions: int, latency: float) -> None:
    """A FakeAzure with both estates until killed; ``/_test/all-calls`` returns (and with POST clears) every call."""
    with FakeAzure(Path(directory), subscriptions=subscriptions, vms=0) as az:
        azure_keyvault.populate(az)
        azure_monitor.populate(az)

        def all_calls(method, path, query, headers, body):
            with az._lock:
                calls = [list(c) for c in az.calls]
                if method == "POST":
                    az.calls.clear()
            return 200, {}, calls

        az.add_route("/_test/all-calls", all_calls)
        az.latency = latency
        info.put((az.url, az.ca_file, az.tenant, az.client, az.secret, list(az.subs)))
        threading.Event().wait()


def kind(path: str) -> str:
    if path.startswith("/vaults/"):
        return "data plane " + path.rsplit("/", 1)[1]
    if path == "/subscriptions":
        return "ARM subscriptions (list)"
    if path.startswith("/subscriptions/"):
        parts = path.split("/")
        return "ARM " + ("/".join(parts[3:]) or "subscription")
    return "login " + path.rsplit("/", 1)[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    # The SDK modules are large: import them before timing, as a worker that ran a task before would have.
    import azure.keyvault.keys  # noqa: F401
    import azure.keyvault.secrets  # noqa: F401
    import azure.mgmt.keyvault  # noqa: F401
    import azure.mgmt.monitor  # noqa: F401

    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    server = context.Process(
        target=serve, args=(tempfile.mkdtemp(), info, args.subscriptions, args.latency), daemon=True
    )
    server.start()
    ok = True
    try:
        url, ca_file, tenant, client, secret, subs = info.get(timeout=60)
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        params = dict(tenant=tenant, client=client, secret=secret, authority_host=url, resource_manager_url=url)

        def calls(reset: bool = False) -> list:
            response = requests.request("POST" if reset else "GET", f"{url}/_test/all-calls", timeout=30)
            return [c for c in response.json() if c[1] != "/_test/all-calls"]

        for cls in (AzKV, AzMonitor):
            list(cls(**params).read(subs[0]))  # warm up: first-use costs of the SDK clients; not timed
        calls(reset=True)
        for cls in (AzKV, AzMonitor):
            plugin = cls(threads=args.threads, **params)
            started, cpu = time.monotonic(), time.process_time()
            records = sum(1 for _ in plugin.read())
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            made = calls(reset=True)
            ideal = len(made) * args.latency / args.threads
            # what no client can beat: the login (2 calls) and the subscription list come one after the other
            floor = (3 + (len(made) - 3) / args.threads) * args.latency
            ratio = seconds / ideal
            ok &= ratio <= 1.5
            print(
                f"{cls.__name__:<10} {seconds:6.2f} s  {len(made):4d} calls  {records:5d} records  "
                f"threads {args.threads}  ideal {ideal:5.2f} s  ratio {ratio:4.2f} {'OK' if ratio <= 1.5 else 'SLOW'}  "
                f"(after 3 sequential login/subscription calls: ideal {floor:4.2f} s, ratio {seconds / floor:4.2f}; "
                f"client CPU {cpu:4.2f} s)"
            )
            per = Counter(kind(p) for _, p, _ in made)
            statuses = Counter(s for _, _, s in made)
            for name, n in sorted(per.items()):
                print(f"    {name:<48} {n:4d}  ({n / len(subs):.2f} per subscription)")
            print(f"    statuses {dict(statuses)}")
    finally:
        server.kill()
    print("PASS" if ok else "FAIL: see ratios above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

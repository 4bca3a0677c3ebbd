"""Benchmark: the CPU one AzCloud subscription costs, cold (a task process's first) and warm.

A deployment's fetch task is a fresh process (forked with Airflow loaded): its first subscription
pays for importing and building the Azure SDK clients and for the token; the others cost only
their calls. This starts
the fake ARM server in its own process (``--latency`` seconds per call), then, in a fresh Python
process, reads one subscription (cold) and then ``--subscriptions`` more the way a fetch task
reads its group (a fresh AzCloud per subscription, ``max_parallel_shards`` at once), and prints
the CPU seconds (user+sys, ``getrusage``) and wall time of each part, CPU per subscription and
subscriptions a second. Printed figures, not a timed test; report ``uptime`` with them.

    python bench/bench_shard_cpu.py [--subscriptions 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import azure as fake_azure  # noqa: E402

READER = """
import json, resource, sys, time
import airflow.sdk.execution_time.task_runner  # loaded in a task process already (forked from its worker)
from airflow_cloudmarker import util
from airflow_cloudmarker.clouds.azcloud import AzCloud

params, subs = json.loads(sys.argv[1]), json.loads(sys.argv[2])

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def reader(sub):
    def run():
        cloud = AzCloud(**params)
        yield from cloud.read(sub)
        cloud.done()
    return run

c0, t0 = cpu(), time.monotonic()
cold = sum(1 for _ in reader(subs[0])())
c1, t1 = cpu(), time.monotonic()
warm = sum(1 for _ in util.stream_parallel([reader(s) for s in subs[1:]], AzCloud.max_parallel_shards))
c2, t2 = cpu(), time.monotonic()
n = len(subs) - 1
print(f"cold: 1 subscription, {cold} records: {c1 - c0:.2f} CPU s in {t1 - t0:.1f} s (imports, clients, token)")
print(f"warm: {n} subscriptions, {warm} records: {c2 - c1:.2f} CPU s in {t2 - t1:.1f} s; "
      f"{(c2 - c1) / n * 1000:.0f} ms CPU a subscription, {n / (t2 - t1):.1f} subscriptions/s "
      f"at {(c2 - c1) / (t2 - t1) * 100:.0f}% of a core")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=200, help="warm subscriptions (one more is read cold)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per ARM call")
    args = parser.parse_args()
    import json
    import tempfile

    work = tempfile.mkdtemp(prefix="cm-shard-cpu-")
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    kwargs = {"subscriptions": args.subscriptions + 1, "vms": 2, "latency": args.latency}
    server = context.Process(target=fake_azure.serve_in_process, args=(work, info), kwargs=kwargs, daemon=True)
    server.start()
    try:
        url, ca_file, tenant, client, secret, subs = info.get(timeout=120)
        params = {
            "tenant": tenant,
            "client": client,
            "secret": secret,
            "authority_host": url,
            "resource_manager_url": url,
        }
        env = {**os.environ, "REQUESTS_CA_BUNDLE": ca_file, "NO_PROXY": "127.0.0.1,localhost"}
        print(f"AzCloud against the fake ARM server, {args.latency * 1000:.0f} ms a call; load {os.getloadavg()}")
        done = subprocess.run([sys.executable, "-c", READER, json.dumps(params), json.dumps(subs)], env=env)
        return done.returncode
    finally:
        server.kill()


if __name__ == "__main__":
    raise SystemExit(main())

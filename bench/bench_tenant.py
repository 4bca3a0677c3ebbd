"""Benchmark: a large Azure tenant through `cloudmarker -n` (AzCloud against the local ARM server).

Starts the fake ARM server in its own process (``--subscriptions`` subscriptions, ``--latency``
seconds per call), runs ``cloudmarker -n`` with AzCloud and FileStore, and prints: wall time, the
fetch tasks the subscriptions became, ARM calls made, the ideal time (calls x latency / concurrency,
with concurrency = max_parallel_shards x AzCloud threads), and whether every subscription's records
arrived exactly once. Printed figures, not a timed test; report ``uptime`` with them.

    python bench/bench_tenant.py [--subscriptions 2000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import requests  # noqa: E402
from servers.azure import serve_in_process  # noqa: E402

CONFIG = """\
plugins:
  myazcloud:
    plugin: cloudmarker.clouds.azcloud.AzCloud
    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
  filestore:
    params:
      path: {out}
audits:
  tenantaudit:
    clouds: [myazcloud]
    stores: [filestore]
run: [tenantaudit]
logger:
  handlers:
    file:
      filename: {log}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cm-tenant-"))
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    server = context.Process(
        target=serve_in_process,
        args=(str(work / "ca"), info),
        kwargs={"subscriptions": args.subscriptions, "vms": 2, "latency": args.latency},
        daemon=True,
    )
    server.start()
    try:
        url, ca_file, tenant, client, secret, subs = info.get(timeout=120)
        out, log = work / "out", work / "cloudmarker.log"
        config = work / "cloudmarker.yaml"
        config.write_text(CONFIG.format(tenant=tenant, client=client, secret=secret, url=url, out=out, log=log))
        env = {
            **os.environ,
            "REQUESTS_CA_BUNDLE": ca_file,
            "NO_PROXY": "127.0.0.1,localhost",
            "AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{work}/findings",
        }
        started = time.monotonic()
        with open(work / "run.log", "w") as run_log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow_cloudmarker.cli", "-n", "-c", str(config)],
                stdout=run_log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        calls = requests.get(f"{url}/_test/calls", timeout=60, verify=ca_file).json()
        text = log.read_text()
        tasks = re.search(r"shards to fetch in (\d+) tasks", text)
        fetch_start = re.search(r"^(\S+ \S+) .*shards to fetch", text, re.M)
        records = json.loads((out / "tenantaudit_myazcloud.json").read_text()) if status == 0 else []
        per_sub = Counter(r["ext"]["subscription_id"] for r in records if r["ext"]["record_type"] == "subscription")
        exactly_once = sorted(per_sub) == sorted(subs) and set(per_sub.values()) == {1}
        concurrency = 8 * 8  # max_parallel_shards shards at once, each AzCloud on 8 threads
        ideal = len(calls) * args.latency / concurrency
        fetch_lines = re.findall(r"read (\d+) records .* in ([\d.]+) s; (\d+) api calls; (\d+) throttled calls", text)
        fetch_seconds = sum(float(s) for _, s, _, _ in fetch_lines)
        print(f"subscriptions {len(subs)}, latency {args.latency * 1000:.0f} ms, exit status {status >> 8}")
        print(
            f"fetch tasks {tasks.group(1) if tasks else '?'}; records {len(records)}; "
            f"every subscription exactly once: {exactly_once}"
        )
        print(
            f"wall {wall:.1f} s (CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
            f"peak RSS {usage.ru_maxrss / 1024:.0f} MB); "
            f"fetch tasks' own time {fetch_seconds:.1f} s; ARM calls {len(calls)} (+{len(subs)} token requests); "
            f"ideal {ideal:.1f} s at concurrency {concurrency}; fetch/ideal {fetch_seconds / ideal if ideal else 0:.2f}"
        )
        print(f"first fetch log line at {fetch_start.group(1) if fetch_start else '?'}; work dir {work}")
        return 0 if status == 0 and exactly_once else 1
    finally:
        server.kill()


if __name__ == "__main__":
    raise SystemExit(main())

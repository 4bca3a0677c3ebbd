"""Benchmark: a large Azure tenant or GCP organisation through `cloudmarker -n` against the local servers.

Starts the fake ARM server (``--cloud azure``, AzCloud) or the fake GCP (``--cloud gcp``, GCPCloud)
in its own process (``--subscriptions`` subscriptions or projects, ``--latency`` seconds per call),
runs ``cloudmarker -n`` with FileStore, and prints: wall time, the fetch tasks the shards became,
API calls made, the ideal time (calls x latency / concurrency, with concurrency =
max_parallel_shards x the calls one shard makes at once), and whether every shard's records
arrived exactly once. Printed figures, not a timed test; report ``uptime`` with them.

    python bench/bench_tenant.py [--subscriptions 2000] [--latency 0.05] [--cloud gcp]
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

import psutil  # noqa: E402
import requests  # noqa: E402
from servers import azure as fake_azure  # noqa: E402
from servers import gcp as fake_gcp  # noqa: E402

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
GCP_CONFIG = """\
plugins:
  mygcpcloud:
    plugin: cloudmarker.clouds.gcpcloud.GCPCloud
    params:
      key_file_path: {key}
      api_endpoints: {endpoints}
  filestore:
    params:
      path: {out}
audits:
  tenantaudit:
    clouds: [mygcpcloud]
    stores: [filestore]
run: [tenantaudit]
logger:
  handlers:
    file:
      filename: {log}
"""


def start_server(args: argparse.Namespace, work: Path) -> tuple[multiprocessing.Process, dict]:
    """The fake cloud in its own process, and what the config and the report need from it."""
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    if args.cloud == "azure":
        target, kwargs = fake_azure.serve_in_process, {"subscriptions": args.subscriptions, "vms": 2}
    else:
        target = fake_gcp.serve_in_process
        kwargs = {"projects": args.subscriptions, "firewalls": 2, "instances": 4, "zones": 3}
    server = context.Process(
        target=target, args=(str(work / "ca"), info), kwargs={**kwargs, "latency": args.latency}, daemon=True
    )
    server.start()
    if args.cloud == "azure":
        url, ca_file, tenant, client, secret, subs = info.get(timeout=120)
        config = CONFIG.format(tenant=tenant, client=client, secret=secret, url=url, out=work / "out", log="{log}")
        return server, {
            "url": url,
            "verify": ca_file,
            "shards": subs,
            "config": config,
            "env": {"REQUESTS_CA_BUNDLE": ca_file},
        }
    endpoints, key, projects, url = info.get(timeout=120)
    config = GCP_CONFIG.format(key=key, endpoints=json.dumps(endpoints), out=work / "out", log="{log}")
    return server, {"url": url, "verify": True, "shards": projects, "config": config, "env": {}}


#: Per cloud: the record type there is one of per shard, its shard field, the output file, calls one shard makes at once
CLOUDS = {
    "azure": ("subscription", "subscription_id", "tenantaudit_myazcloud.json", 8),
    # GCP: a project's projects.get, firewalls.list and aggregatedList run at once (one page each here).
    "gcp": ("project", "project_id", "tenantaudit_mygcpcloud.json", 3),
}


def _cpu_seconds(pid: int) -> float:
    """User+sys CPU seconds of a running process (the fake server: it shares the cores with the client)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _load() -> str:
    """The load averages (other helpers' benchmarks share the machine)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=2000, help="subscriptions (azure) or projects (gcp)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--cloud", choices=sorted(CLOUDS), default="azure")
    parser.add_argument(
        "--profile", metavar="FILE", help="run cloudmarker under py-spy (installed apart), raw stacks to FILE"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cm-tenant-"))
    server, fake = start_server(args, work)
    try:
        out, log = work / "out", work / "cloudmarker.log"
        config = work / "cloudmarker.yaml"
        config.write_text(fake["config"].replace("{log}", str(log)))
        env = {
            **os.environ,
            **fake["env"],
            "NO_PROXY": "127.0.0.1,localhost",
            "AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{work}/findings",
        }
        started = time.monotonic()
        with open(work / "run.log", "w") as run_log:
            command = [sys.executable, "-m", "airflow_cloudmarker.cli", "-n", "-c", str(config)]
            if args.profile:  # the CPU and wall figures then include py-spy's sampling
                command = [
                    "py-spy",
                    "record",
                    "--gil",
                    "--nonblocking",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "-o",
                    args.profile,
                    "--",
                    *command,
                ]
            proc = subprocess.Popen(
                command,
                stdout=run_log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        server_cpu = _cpu_seconds(server.pid)
        every_call = requests.get(f"{fake['url']}/_test/calls?all=1", timeout=60, verify=fake["verify"]).json()
        tokens = sum(1 for c in every_call if c[1].endswith("/token"))
        api = "/subscriptions" if args.cloud == "azure" else "/"  # not the login's discovery and token calls
        calls = [c for c in every_call if c[1].startswith(api) and not c[1].endswith("/token")]
        text = log.read_text()
        tasks = re.search(r"shards to fetch in (\d+) tasks", text)
        fetch_start = re.search(r"^(\S+ \S+) .*shards to fetch", text, re.M)
        shard_type, shard_field, output, per_shard = CLOUDS[args.cloud]
        records = json.loads((out / output).read_text()) if status == 0 else []
        per_sub = Counter(r["ext"][shard_field] for r in records if r["ext"]["record_type"] == shard_type)
        exactly_once = sorted(per_sub) == sorted(fake["shards"]) and set(per_sub.values()) == {1}
        concurrency = 8 * per_shard  # max_parallel_shards shards at once, each making per_shard calls at once
        ideal = len(calls) * args.latency / concurrency
        fetch_lines = re.findall(r"read (\d+) records .* in ([\d.]+) s; (\d+) api calls", text)
        fetch_seconds = sum(float(s) for _, s, _ in fetch_lines)
        print(
            f"{args.cloud}: {len(fake['shards'])} shards, latency {args.latency * 1000:.0f} ms, "
            f"exit status {status >> 8}"
        )
        print(
            f"fetch tasks {tasks.group(1) if tasks else '?'}; records {len(records)}; "
            f"every shard exactly once: {exactly_once}"
        )
        print(
            f"wall {wall:.1f} s (CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
            f"peak RSS {usage.ru_maxrss / 1024:.0f} MB); "
            f"fetch tasks' own time {fetch_seconds:.1f} s; API calls {len(calls)} (+{tokens} token requests); "
            f"ideal {ideal:.1f} s at concurrency {concurrency}; fetch/ideal {fetch_seconds / ideal if ideal else 0:.2f}"
        )
        print(f"fake server CPU {server_cpu:.1f} s (user+sys, start-up included); load {_load()}")
        print(f"first fetch log line at {fetch_start.group(1) if fetch_start else '?'}; work dir {work}")
        return 0 if status == 0 and exactly_once else 1
    finally:
        server.kill()


if __name__ == "__main__":
    raise SystemExit(main())

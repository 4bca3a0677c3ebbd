"""Benchmark: GCPCloud over real HTTP against tests/servers/gcp.py with a fixed latency per call.

The issue's case: 50 projects x 3 firewalls x 40 instances spread over 20 zones, 50 ms per call.
Two ways of reading are measured:

* ``mapped``: what the audit DAG does. ``shards()`` once, then one fresh GCPCloud per project
  (a mapped fetch task constructs its own plugin, so each fetches its own token), at most
  ``GCPCloud.max_parallel_shards`` at once (Airflow's max_active_tis_per_dagrun), run here in threads.
* ``read()``: one plugin reading every project itself with ``threads`` threads.

Each measurement uses a fresh server and a fresh key (so credential parsing, the token call and
client building are counted); the process is warmed up once first (imports, discovery documents),
and the best of ``--repeat`` runs is shown, because the machine may be shared. For each it prints
wall time, API calls, token calls, calls per project, and the target
``1.5 x calls x latency / concurrency``. A second table shows that calls per project do not
depend on the number of zones.

    python bench/bench_gcp.py                       # the issue's case
    python bench/bench_gcp.py --projects 200 --latency 0.1
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.gcp import GCPServer, make_world  # noqa: E402

from airflow_cloudmarker.clouds.gcpcloud import GCPCloud  # noqa: E402


def token_calls(server: GCPServer) -> int:
    return sum(1 for call in server.calls if call[1] == "/token")


def run_mapped(server: GCPServer, key: str) -> tuple[float, int]:
    started = time.monotonic()
    shards = GCPCloud(key_file_path=key, api_endpoints=server.endpoints).shards()

    def fetch(shard: str) -> int:
        cloud = GCPCloud(key_file_path=key, api_endpoints=server.endpoints)  # one plugin per mapped task
        count = sum(1 for _ in cloud.read(shard))
        cloud.done()
        return count

    with ThreadPoolExecutor(GCPCloud.max_parallel_shards) as pool:
        records = sum(pool.map(fetch, shards))
    return time.monotonic() - started, records


def run_read(server: GCPServer, key: str, threads: int) -> tuple[float, int]:
    started = time.monotonic()
    records = sum(1 for _ in GCPCloud(key_file_path=key, api_endpoints=server.endpoints, threads=threads).read())
    return time.monotonic() - started, records


def measure(args, zones: int, mode: str, workdir: str) -> dict:
    world = make_world(args.projects, args.firewalls, args.instances, zones)
    with GCPServer(world, latency=args.latency) as server:
        key = os.path.join(workdir, f"key-{mode}-{zones}.json")
        server.make_key(Path(key))
        if mode == "mapped":
            concurrency = GCPCloud.max_parallel_shards
            wall, records = run_mapped(server, key)
        else:
            concurrency = args.threads
            wall, records = run_read(server, key, args.threads)
        api = len(server.api_calls())
        tokens = token_calls(server)
    calls = api + tokens
    target = 1.5 * calls * args.latency / concurrency
    return {
        "mode": mode,
        "zones": zones,
        "records": records,
        "wall": wall,
        "api": api,
        "tokens": tokens,
        "per_project": (api - 1) / args.projects,  # minus the projects.list call
        "concurrency": concurrency,
        "target": target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--firewalls", type=int, default=3)
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--zones", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")
    parser.add_argument("--threads", type=int, default=8, help="GCPCloud threads for the read() mode")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest is shown")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("airflow_cloudmarker").setLevel(logging.ERROR)
    print(
        f"{args.projects} projects x {args.firewalls} firewalls x {args.instances} instances in {args.zones} zones, "
        f"{args.latency * 1000:.0f} ms per call"
    )
    header = (
        f"{'mode':8} {'zones':>5} {'records':>8} {'api calls':>9} {'tokens':>6} {'calls/project':>13} "
        f"{'conc.':>5} {'wall s':>7} {'target s':>8}  verdict"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-gcp-") as workdir:
        started = time.monotonic()
        warm = argparse.Namespace(**{**vars(args), "projects": 2, "latency": 0.0})
        measure(warm, 2, "mapped", workdir)
        print(f"(warm-up: imports and discovery documents, {time.monotonic() - started:.2f} s, not counted)")
        print(header)
        cases = [(args.zones, "mapped"), (args.zones, "read()"), (1, "mapped"), (40, "mapped")]
        rows = [
            min((measure(args, zones, mode, workdir) for _ in range(args.repeat)), key=lambda row: row["wall"])
            for zones, mode in cases
        ]
    for row in rows:
        verdict = "ok" if row["wall"] <= row["target"] else "SLOW"
        ok &= verdict == "ok"
        print(
            f"{row['mode']:8} {row['zones']:>5} {row['records']:>8} {row['api']:>9} {row['tokens']:>6} "
            f"{row['per_project']:>13.2f} {row['concurrency']:>5} {row['wall']:>7.2f} {row['target']:>8.2f}  {verdict}"
        )
    mapped = [row["per_project"] for row in rows if row["mode"] == "mapped"]
    same = len(set(mapped)) == 1
    print(f"calls per project independent of zones (1, {args.zones}, 40 zones): {'yes' if same else 'NO'} {mapped}")
    sys.exit(0 if ok and same else 1)


if __name__ == "__main__":
    main()

"""Benchmark: the findings UI's reads with 100,000 open findings in one audit.

Writes the state with ``findings.track`` (which writes the UI's index beside the snapshot), then
times what the API routes do per request, in this process, best of ``--repeat``:

* the first page of the table: 50 rows filtered by severity (``GET .../findings?severity=high``);
  target < 300 ms;
* the audits overview (``GET /api/v1/audits``: HEAD.json and meta.json per audit); target < 500 ms;
* a text search and a non-default sort (these stream every row of the wanted severities);
* the peak memory (tracemalloc) of a first page and of a full search, at 10,000 and at 100,000
  findings: it must not grow with the number of findings.

The HTTP layer (JWT check, one DB query for the DAG's team) is not in these figures; it adds a few
milliseconds per request on the API server.

    python bench/bench_ui.py [--findings N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-ui-airflow-"))

from airflow_cloudmarker import findings  # noqa: E402
from airflow_cloudmarker.ui import state as st  # noqa: E402

SEVERITIES = ("critical", "high", "medium", "low", "info")


def events(count: int):
    for i in range(count):
        yield {
            "ext": {"port": 22},
            "com": {
                "cloud_type": "azure",
                "record_type": "firewall_rule_event",
                "reference": f"/subscriptions/s{i % 40}/resourceGroups/rg{i % 300}/providers/Microsoft.Network/"
                f"networkSecurityGroups/nsg{i}/securityRules/ssh",
                "description": f"Security rule ssh of nsg{i} exposes port 22 to the Internet.",
                "recommendation": "Restrict the rule's source to known addresses.",
                "severity": SEVERITIES[i % 5],
                "cloud_key": "azcloud",
                "origin_key": "firewallruleevent",
            },
        }


def build(base: str, audit: str, count: int) -> float:
    store = findings.StateStore(base, audit)
    start = time.perf_counter()
    findings.track(store, "run1", "2026-01-01T00:00:00+00:00", events(count), findings.Scope(), lambda e: None)
    findings.track(store, "run2", "2026-01-02T00:00:00+00:00", events(count), findings.Scope(), lambda e: None)
    return (time.perf_counter() - start) / 2


def best(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def first_page(base: str, audit: str):
    return st.AuditState.read(base, audit).page(st.build_query(severity="high", limit=50))


def overview(base: str):
    return [st.AuditState.read(base, key).overview() for key in st.audit_keys(base)]


def search(base: str, audit: str):
    return st.AuditState.read(base, audit).page(st.build_query(q="nsg4242/", limit=50))


def sorted_page(base: str, audit: str):
    return st.AuditState.read(base, audit).page(st.build_query(severity="high", sort="-reference", limit=50))


def peak_kib(work) -> float:
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="bench-ui-")
    base = f"file://{root}"
    small = args.findings // 10
    print(f"writing the state: {args.findings:,} findings in audit big, {small:,} in audit small (two runs each)")
    seconds = build(base, "big", args.findings)
    print(f"  findings.track (snapshot + index) per run: {seconds:.2f} s for {args.findings:,} findings")
    build(base, "small", small)
    total, rows = first_page(base, "big")
    assert total == args.findings // 5 and len(rows) == 50, (total, len(rows))
    assert search(base, "big")[0] == 1

    figures = {
        "first page, 50 rows, severity=high": (best(args.repeat, lambda: first_page(base, "big")), 300),
        "audits overview (2 audits)": (best(args.repeat, lambda: overview(base)), 500),
        "search q= over every row": (best(max(1, args.repeat // 2), lambda: search(base, "big")), None),
        "sort=-reference, severity=high": (best(max(1, args.repeat // 2), lambda: sorted_page(base, "big")), None),
    }
    for name, (ms, target) in figures.items():
        verdict = "" if target is None else (f"  (target < {target} ms: " + ("ok)" if ms < target else "MISSED)"))
        print(f"{name:40s} {ms:8.1f} ms{verdict}")
    print("peak memory of one request (tracemalloc), small vs big audit:")
    for name, work in (("first page", first_page), ("search", search), ("sorted page", sorted_page)):
        low, high = peak_kib(lambda w=work: w(base, "small")), peak_kib(lambda w=work: w(base, "big"))
        print(f"  {name:12s} {small:>7,}: {low:8.0f} KiB   {args.findings:>7,}: {high:8.0f} KiB")


if __name__ == "__main__":
    main()

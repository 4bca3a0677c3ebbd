"""Benchmark: the findings task's own work per event, without Airflow's runner around it.

Builds N mock events the way the check task emits them (MockEvent over MockCloud's records,
encoded into batches with their stamp), then does what ``tasks.track_findings`` does with them:
decode each batch, ``findings.track`` against a local state folder (snapshot, UI index, HEAD),
and encode every annotated event into the outgoing batches. Run 1 finds everything new; run 2
(same events, the state of run 1) finds everything open, the steady state of a daily audit.
Prints events/s and CPU seconds per run. Printed figures, not a timed test.

    python bench/bench_findings.py [N=333334] [--profile]
"""

from __future__ import annotations

import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time

from airflow_cloudmarker import batches, findings
from airflow_cloudmarker import records as rec
from airflow_cloudmarker.clouds.mockcloud import MockCloud
from airflow_cloudmarker.events.mockevent import MockEvent


class MemoryXCom:
    """Just enough of a task instance for BatchWriter and read_unstamped: XComs in a dict."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        self.map_index = -1
        self.values: dict = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.values[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1) -> object:
        return self.values.get((task_ids, key))


def event_batches(count: int) -> tuple[MemoryXCom, dict]:
    """The check task's output for ``count`` events: its XComs and its manifest."""
    ti = MemoryXCom("check_mockevent")
    stamp = {**rec.origin_stamp("mockaudit", "20261201_000000", "mockevent", "MockEvent", "event"), "cloud_key": "m"}
    writer = batches.BatchWriter(ti, batches.BatchLimits(), stamp=stamp)
    check = MockEvent()
    for record in MockCloud(record_count=count * 3).read():
        for event in check.eval(record):
            writer.add(event)
    return ti, writer.manifest()


def run_findings(ti: MemoryXCom, manifest: dict, state_url: str, run_id: str) -> tuple[float, float, object]:
    """One findings run: (wall seconds, CPU seconds, outcome)."""
    out = MemoryXCom("findings")
    run_fields = {"audit_key": "mockaudit", "audit_version": "20261201_000000"}
    writer = batches.BatchWriter(out, batches.BatchLimits(), stamp=run_fields)

    def events():
        for batch, stamp in batches.read_unstamped(ti, [manifest]):
            stamp = stamp or {}
            writer.set_stamp({**stamp, **run_fields})
            keys = {name: stamp[name] for name in ("origin_key", "cloud_key") if name in stamp}
            for event in batch:
                rec.stamp(event, keys)
                yield event
        writer.set_stamp(run_fields)

    store = findings.StateStore(state_url, "mockaudit")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = findings.track(
        store, run_id, "2026-12-01T00:00:00+00:00", events(), findings.Scope(), writer.add, None, writer.add_encoded
    )
    writer.manifest()
    return time.perf_counter() - wall0, time.process_time() - cpu0, outcome


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 333_334
    ti, manifest = event_batches(count)
    state_url = "file://" + tempfile.mkdtemp(prefix="cm-bench-findings-")
    print(f"{'run':<12} {'events':>8} {'wall s':>7} {'CPU s':>6} {'events/s':>9}  outcome")
    for number, name in ((1, "all new"), (2, "all open")):
        profiler = cProfile.Profile() if "--profile" in sys.argv and number == 2 else None
        if profiler:
            profiler.enable()
        wall, cpu, outcome = run_findings(ti, manifest, state_url, f"run_{number}")
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        print(
            f"{name:<12} {manifest['records']:>8} {wall:>7.2f} {cpu:>6.2f} {manifest['records'] / wall:>9.0f}"
            f"  new {outcome.new}, open {outcome.open}, resolved {outcome.resolved}"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; state in {state_url}")
    os.sys.stdout.flush()


if __name__ == "__main__":
    main()

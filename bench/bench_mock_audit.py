"""Benchmark: the mock audit (mockcloud -> mockevent, filestore as store and alert) through `cloudmarker -n`.

Prints wall time and peak RSS (ru_maxrss from wait4) of the whole `cloudmarker -n` process per record count.

    python bench/bench_mock_audit.py                 # N = 200000 and 1000000
    python bench/bench_mock_audit.py 10000 50000     # other sizes
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def run(record_count: int, workdir: str) -> tuple[float, float, int]:
    out_dir = os.path.join(workdir, f"out_{record_count}")
    config_path = os.path.join(workdir, f"bench_{record_count}.yaml")
    with open(config_path, "w") as f:
        f.write(
            f"plugins:\n"
            f"  mockcloud:\n    params:\n      record_count: {record_count}\n"
            f"  filestore:\n    params:\n      path: {out_dir}\n"
            f"logger:\n  handlers:\n    file:\n      filename: {workdir}/cloudmarker.log\n"
        )
    cmd = [sys.executable, "-m", "airflow_cloudmarker.cli", "-n", "-c", config_path]
    # A fresh findings state per size: every event is a new finding (no resolved events from a previous size).
    env = {**os.environ, "AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{workdir}/findings_{record_count}"}
    started = time.monotonic()
    with open(os.path.join(workdir, f"run_{record_count}.log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"cloudmarker -n failed for N={record_count}; see {log.name}")
    size = os.path.getsize(os.path.join(out_dir, "mockaudit_mockcloud.json"))
    return wall, usage.ru_maxrss / 1024, size


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200_000, 1_000_000]
    workdir = tempfile.mkdtemp(prefix="cm-bench-")
    print(f"{'records':>10} {'wall s':>8} {'peak RSS MB':>12} {'records/s':>10} {'output MB':>10}")
    for n in sizes:
        wall, rss_mb, size = run(n, workdir)
        print(f"{n:>10} {wall:>8.1f} {rss_mb:>12.0f} {n / wall:>10.0f} {size / 1e6:>10.1f}", flush=True)


if __name__ == "__main__":
    main()

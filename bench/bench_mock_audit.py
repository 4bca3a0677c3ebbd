"""Benchmark: the mock audit (mockcloud -> mockevent, filestore as store and alert) through `cloudmarker -n`.

Prints wall time and peak RSS (ru_maxrss from wait4) of the whole `cloudmarker -n` process per record count.
With ``--original PATH`` (the ``cloudmarker`` command of Cloudmarker 0.1.0 in its own venv:
``pip install --no-deps cloudmarker==0.1.0 pyyaml schedule``) each size also runs the original
with the same config, and the ratio of the two wall times is printed.

    python bench/bench_mock_audit.py                 # N = 200000 and 1000000
    python bench/bench_mock_audit.py 10000 50000     # other sizes
    python bench/bench_mock_audit.py --original /tmp/orig/bin/cloudmarker 1000000

Run it twice and take the second figures when the venv was installed without bytecode (uv does
not compile at install): the first run compiles and caches every module it imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def run(record_count: int, workdir: str, original: str | None = None) -> tuple[float, float, int]:
    tag = f"{record_count}_original" if original else str(record_count)
    out_dir = os.path.join(workdir, f"out_{tag}")
    config_path = os.path.join(workdir, f"bench_{tag}.yaml")
    with open(config_path, "w") as f:
        f.write(
            f"plugins:\n"
            f"  mockcloud:\n    params:\n      record_count: {record_count}\n"
            f"  filestore:\n    params:\n      path: {out_dir}\n"
            f"logger:\n  handlers:\n    file:\n      filename: {workdir}/cloudmarker_{tag}.log\n"
        )
    cmd = [original] if original else [sys.executable, "-m", "airflow_cloudmarker.cli"]
    cmd += ["-n", "-c", config_path]
    # A fresh findings state per size: every event is a new finding (no resolved events from a previous size).
    env = {**os.environ, "AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{workdir}/findings_{record_count}"}
    # As on a user's machine, modules are compiled once and their bytecode cached (pip compiles at install);
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes) would make every run compile Airflow again, ~5 s.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.monotonic()
    with open(os.path.join(workdir, f"run_{tag}.log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"{cmd[0]} -n failed for N={record_count}; see {log.name}")
    size = os.path.getsize(os.path.join(out_dir, "mockaudit_mockcloud.json"))
    return wall, usage.ru_maxrss / 1024, size


def main() -> None:
    args = sys.argv[1:]
    original = None
    if args[:1] == ["--original"]:
        original, args = args[1], args[2:]
    sizes = [int(a) for a in args] or [200_000, 1_000_000]
    workdir = tempfile.mkdtemp(prefix="cm-bench-")
    print(f"{'records':>10} {'wall s':>8} {'peak RSS MB':>12} {'records/s':>10} {'output MB':>10}", end="")
    print(f" {'original s':>10} {'orig. RSS':>9} {'ratio':>6}" if original else "")
    for n in sizes:
        wall, rss_mb, size = run(n, workdir)
        print(f"{n:>10} {wall:>8.1f} {rss_mb:>12.0f} {n / wall:>10.0f} {size / 1e6:>10.1f}", end="", flush=True)
        if original:
            owall, orss, _ = run(n, workdir, original)
            print(f" {owall:>10.1f} {orss:>9.0f} {wall / owall:>6.2f}", end="")
        print(flush=True)
    print(f"(logs in {workdir})")


if __name__ == "__main__":
    main()

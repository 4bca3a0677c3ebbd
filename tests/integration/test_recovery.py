"""``cloudmarker -n`` after a crash, and two of them at once: the user's home never breaks for good.

Each test runs the ``cloudmarker`` command as a user does (tests/support/cli.py ``run_cli_as_user``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from support.cli import console_script, user_config, user_env


def test_a_db_whose_setup_was_killed_before_the_seed_rows_is_repaired(user_home, tmp_path):
    """kill -9 between Airflow stamping the schema and seeding it left every later run failing with
    ``FOREIGN KEY constraint failed``: the start-up check now re-seeds."""
    out = user_config(user_home, tmp_path)
    db = user_home / ".cloudmarker" / "airflow" / "airflow.db"
    with sqlite3.connect(db) as conn:  # the state such a kill leaves: schema at head, no seed rows
        conn.execute("DELETE FROM log_template")
        conn.execute("DELETE FROM slot_pool")
    result = run_cli(user_home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FOREIGN KEY" not in result.stdout + result.stderr
    assert (out / "mockaudit_mockcloud.json").is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM slot_pool WHERE pool = 'default_pool'").fetchone() == (1,)


def run_cli(home, *args):
    return subprocess.run(
        [console_script("cloudmarker"), "-n", *args],
        cwd=home,
        env=user_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_two_first_runs_at_once_on_a_fresh_home_both_succeed(tmp_path):
    """Both processes would migrate the same new SQLite file; the second now waits for the first."""
    home = tmp_path / "home"
    home.mkdir()
    out = user_config(home, tmp_path)
    procs = [
        subprocess.Popen(
            [console_script("cloudmarker"), "-n"],
            cwd=home,
            env=user_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-4000:]
        assert "Traceback" not in output, output[-4000:]
    assert sum("waiting for it" in output for output in outputs) == 1
    assert (out / "mockaudit_mockcloud.json").is_file()


SLOW_AUDIT = """\
plugins:
  slowstore:
    plugin: cm_test_plugins.SlowStore
    params:
      marker: {marker}
      seconds: 120
audits:
  slowaudit:
    clouds: [mockcloud]
    stores: [filestore, slowstore]
    events: [mockevent]
    alerts: [filestore]
run: [slowaudit, mockaudit]
"""


def start_slow_run(home, tmp_path) -> tuple[subprocess.Popen, Path]:
    """``cloudmarker -n`` on an audit whose store hangs; returns once the fetch's batches were pushed."""
    marker = tmp_path / "slowstore-started"
    user_config(home, tmp_path, SLOW_AUDIT.format(marker=marker))
    proc = subprocess.Popen(
        [console_script("cloudmarker"), "-n"],
        cwd=home,
        env=user_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        assert time.monotonic() < deadline, "the slow store never started"
        time.sleep(0.2)
    return proc, home / ".cloudmarker" / "airflow"


def runs_of(airflow_home: Path, dag_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(airflow_home / "airflow.db") as conn:
        return conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", (dag_id,)).fetchall()


def unfinished_tasks(airflow_home: Path, run_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(airflow_home / "airflow.db") as conn:
        rows = conn.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)).fetchall()
    return [(task, state) for task, state in rows if state not in ("success", "failed", "upstream_failed", "skipped")]


def batch_files(airflow_home: Path, dag_id: str) -> list[Path]:
    return [p for p in (airflow_home / "xcom" / dag_id).rglob("*") if p.is_file()]


def test_a_run_killed_mid_way_is_failed_and_its_batches_deleted_at_the_next_start(user_home, tmp_path):
    proc, airflow_home = start_slow_run(user_home, tmp_path)
    assert batch_files(airflow_home, "slowaudit"), "the fetch pushed no batches before the store started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    ((run_id, state),) = runs_of(airflow_home, "slowaudit")
    assert state == "running"  # what kill -9 leaves

    (user_home / "cloudmarker.yaml").write_text("run: [mockaudit]\n")
    result = run_cli(user_home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (
        f"cloudmarker: run {run_id} of audit slowaudit was left running by a process that died; "
        "marked it failed and deleted its record batches" in result.stderr
    )
    assert runs_of(airflow_home, "slowaudit") == [(run_id, "failed")]
    assert unfinished_tasks(airflow_home, run_id) == []
    assert batch_files(airflow_home, "slowaudit") == []
    assert not list((tmp_path / "out").glob(".*.tmp"))
    # The next run does not report it again.
    again = run_cli(user_home)
    assert again.returncode == 0 and "left running" not in again.stderr


def test_ctrl_c_stops_the_whole_run_promptly_and_cleans_up(user_home, tmp_path):
    proc, airflow_home = start_slow_run(user_home, tmp_path)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    output = proc.communicate(timeout=120)[0]
    seconds = time.monotonic() - started
    assert proc.returncode == 130, output[-4000:]
    assert seconds < 30, f"Ctrl-C took {seconds:.0f} s to stop the run\n{output[-3000:]}"
    assert "Ctrl-C: stopping" in output
    summary = output[output.index("Cloudmarker summary") :]
    assert "slowaudit" in summary and "interrupted" in summary
    assert [line.split()[:2] for line in summary.splitlines() if line.startswith("mockaudit")] == [
        ["mockaudit", "not"]
    ]  # the next audit did not start
    ((run_id, state),) = runs_of(airflow_home, "slowaudit")
    assert state == "failed"
    assert unfinished_tasks(airflow_home, run_id) == []
    assert batch_files(airflow_home, "slowaudit") == []
    assert not list((tmp_path / "out").glob(".*.tmp"))

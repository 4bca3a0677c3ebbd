"""``cloudmarker -n`` after a crash, and two of them at once: the user's home never breaks for good.

Each test runs the ``cloudmarker`` command as a user does (tests/conftest.py ``run_cli_as_user``).
"""

from __future__ import annotations

import sqlite3
import subprocess

from conftest import console_script, user_config, user_env


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

"""Test session setup: one Airflow home with one migrated SQLite metadata DB for the whole session.

The environment is set before anything imports Airflow (Airflow reads its settings at import),
so in-process runs (``runner.run_now``) and ``cloudmarker``/``airflow`` subprocesses share the
same DB: it is migrated once, and each later ``dag.test()`` in this process costs under a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SESSION_DIR = Path(tempfile.mkdtemp(prefix="cloudmarker-tests-"))
AIRFLOW_HOME = SESSION_DIR / "airflow"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Airflow reads most settings (dags_folder, the XCom backend) once, when first imported: set the same
# embedded environment `cloudmarker -n` uses before any test module can import Airflow.
from airflow_cloudmarker import runner as _runner  # noqa: E402 - needs AIRFLOW_HOME set first

os.environ.update(_runner.embedded_environment([]))
# Test helper plugins (tests/cm_test_plugins.py) must import in subprocesses too.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's metadata DB once (about 10 s); every Airflow test depends on it."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    _runner.ensure_database()
    return AIRFLOW_HOME


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME and working directory, so ~/.cloudmarker.yaml and ./cloudmarker.yaml are the test's own."""
    home_dir = tmp_path / "home"
    work_dir = tmp_path / "work"
    home_dir.mkdir()
    work_dir.mkdir()
    monkeypatch.setenv("HOME", str(home_dir))
    # Each test keeps its own findings state (new/open/resolved), so audits in other tests don't count.
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__FINDINGS_PATH", f"file://{tmp_path}/findings")
    monkeypatch.chdir(work_dir)
    return home_dir


def console_script(name: str) -> str:
    """The installed console script of this interpreter's environment (even when it is not activated)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run the installed ``cloudmarker`` console script; return the CompletedProcess."""
    return subprocess.run(
        [console_script("cloudmarker"), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def out_dir(home, tmp_path) -> Path:
    """A ~/.cloudmarker.yaml sending FileStore output and the log file into the test's directory."""
    out = tmp_path / "out"
    (home / ".cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out}\n"
        f"logger:\n  handlers:\n    file:\n      filename: {tmp_path}/cloudmarker.log\n"
    )
    return out

"""Test session setup: one Airflow home with one migrated SQLite metadata DB for the whole session.

The environment is set before anything imports Airflow (Airflow reads its settings at import),
so in-process runs (``runner.run_now``) and ``cloudmarker``/``airflow`` subprocesses share the
same DB: it is migrated once, and each later ``dag.test()`` in this process costs under a second.
"""

from __future__ import annotations

import os
import shutil
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
from airflow_cloudmarker import environment as _environment  # noqa: E402 - needs AIRFLOW_HOME set first
from airflow_cloudmarker import metadb as _metadb  # noqa: E402

os.environ.update(_environment.embedded_environment([]))
# Test helper plugins (tests/cm_test_plugins.py) must import in subprocesses too.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's metadata DB once (about 10 s); every Airflow test depends on it."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    _metadb.ensure_database()
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


def user_env(home: Path, extra: dict | None = None) -> dict[str, str]:
    """The environment of a new user's shell: HOME is ``home``, and no ``AIRFLOW_*`` or ``CLOUDMARKER_*``
    setting that this test session made (or that the machine has) leaks in.

    Tests that reproduce a first run use this instead of ``os.environ``: the session's own embedded
    environment once hid a crash every new user with a mail password hit.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CLOUDMARKER_"))}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run_cli_as_user(*args: str, home: Path, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run ``cloudmarker`` as a new user does: a subprocess with ``user_env(home)``, nothing imported first."""
    return subprocess.run(
        [console_script("cloudmarker"), *args],
        cwd=cwd or home,
        env=user_env(home, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_config(home: Path, tmp_path: Path, text: str = "") -> Path:
    """Write ``~/.cloudmarker.yaml``: FileStore output and the log file inside the test's directory, then ``text``.

    Returns the FileStore output directory.
    """
    out = tmp_path / "out"
    (home / ".cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out}\n"
        f"logger:\n  handlers:\n    file:\n      filename: {tmp_path}/cloudmarker.log\n"
    )
    if text:
        (home / "cloudmarker.yaml").write_text(text)  # ~/cloudmarker.yaml cascades over ~/.cloudmarker.yaml
    return out


@pytest.fixture(scope="session")
def user_db_template(tmp_path_factory) -> Path:
    """A metadata DB that a real first ``cloudmarker -n`` made in an empty HOME, to copy into user homes.

    Every first run migrates a new SQLite DB (about 15 s); tests of what a user's config does (not of
    the first migration itself) start from a copy of this one, in a HOME that is otherwise new.
    """
    home = tmp_path_factory.mktemp("template-home")
    user_config(home, home)
    result = run_cli_as_user("-n", home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = home / ".cloudmarker" / "airflow" / "airflow.db"
    assert db.is_file(), f"the first run made no embedded DB at {db}"
    assert not (home / "airflow").exists(), "the first run used ~/airflow instead of the embedded home"
    return db


@pytest.fixture
def user_home(tmp_path, user_db_template) -> Path:
    """A new user's HOME, with a copy of an already migrated embedded metadata DB."""
    home_dir = tmp_path / "user-home"
    airflow_home = home_dir / ".cloudmarker" / "airflow"
    airflow_home.mkdir(parents=True)
    shutil.copy(user_db_template, airflow_home / "airflow.db")
    return home_dir


@pytest.fixture
def out_dir(home, tmp_path) -> Path:
    """A ~/.cloudmarker.yaml sending FileStore output and the log file into the test's directory."""
    out = tmp_path / "out"
    (home / ".cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out}\n"
        f"logger:\n  handlers:\n    file:\n      filename: {tmp_path}/cloudmarker.log\n"
    )
    return out

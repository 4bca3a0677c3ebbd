"""Test session setup: one Airflow home with one migrated SQLite metadata DB for the whole session.

The environment is set before anything imports Airflow (Airflow reads its settings at import),
so in-process runs (``runner.run_now``) and ``cloudmarker``/``airflow`` subprocesses share the
same DB: it is migrated once, and each later ``dag.test()`` in this process costs under a second.

Tests live in one folder per layer, and each test gets that layer's marker (``pytest -m unit`` or
``pytest tests/unit`` runs the fast layer alone):

* ``unit/``: no Airflow run, no metadata DB, no server, no ``cloudmarker`` process.
* ``integration/``: local servers (tests/servers), ``dag.test()`` runs, the ``cloudmarker`` command.
* ``deployment/``: Airflow's scheduler, API server, Celery workers, a browser.

Helpers tests import are in tests/support and tests/servers; ``tests/`` is on ``sys.path`` and on
``PYTHONPATH``, so the test plugins (cm_test_plugins.py, cm_hooked_plugins.py) and
``servers.airflow.worker_hostname`` import by dotted path in subprocesses too.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
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
# Test helper plugins (tests/cm_test_plugins.py) and servers.airflow must import in subprocesses too.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support.cli import run_cli_as_user, user_config  # noqa: E402 - needs tests/ on sys.path

LAYERS = ("unit", "integration", "deployment")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test with its layer, the folder it lives in, so ``-m unit`` selects what ``tests/unit`` holds."""
    for item in items:
        path = Path(str(item.path)).resolve()
        if path.is_relative_to(TESTS_DIR) and path.relative_to(TESTS_DIR).parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, path.relative_to(TESTS_DIR).parts[0]))


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

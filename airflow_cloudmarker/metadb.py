"""The metadata DB of cloudmarker's own Airflow: made on first use, under a lock, repaired after a kill.

Two things went wrong on real laptops. Two ``cloudmarker -n`` started at once on a fresh home both
migrated the same SQLite file, and one died in the middle with an 80-line SQLAlchemy traceback.
And a run killed (``kill -9``, a closed lid) between Airflow stamping the schema and inserting its
seed rows (the default pool, the log template that every DAG run points to) left a DB at the head
revision that failed every later run with ``FOREIGN KEY constraint failed``. So setup holds a file
lock in AIRFLOW_HOME, and every start re-applies Airflow's own idempotent seeding.

Only Airflow's public ``airflow.utils.db`` functions are used (and the ``alembic_version`` table they keep).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger("airflow_cloudmarker.metadb")

LOCK_FILE_NAME = "cloudmarker-setup.lock"


@contextlib.contextmanager
def home_lock(name: str = LOCK_FILE_NAME, wait_message: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``AIRFLOW_HOME/<name>`` (released by the kernel if we are killed)."""
    home = os.environ["AIRFLOW_HOME"]
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, name), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait_message:
                say(wait_message)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("Waited %.1f s for another cloudmarker process", time.monotonic() - started)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def say(message: str) -> None:
    """One line on stderr: this runs before (and while) Airflow replaces the logging configuration."""
    print(f"cloudmarker: {message}", file=sys.stderr, flush=True)


HEAD_MARKER_NAME = "cloudmarker-db-at-head.json"


def at_head() -> bool:
    """Whether the DB's schema is at this Airflow's head revision.

    Airflow's own check (``check_migrations``) loads every migration script to find the head:
    about a second of each ``cloudmarker -n``. Once it has passed, the revision it passed with is
    kept in ``AIRFLOW_HOME/cloudmarker-db-at-head.json`` with the Airflow version and the DB URL;
    a later start that reads the same revision from the DB with the same Airflow and DB skips it.
    Any difference (an upgraded Airflow, a DB migrated or restored by hand) runs the full check.
    """
    from airflow.utils import db

    remembered = _remembered_head()
    current = _current_revision()
    if current is not None and remembered is not None and remembered == _head_key(current):
        return True
    try:
        db.check_migrations(timeout=0)
    except TimeoutError:
        return False
    except Exception as exc:  # no alembic table yet, an empty file: not migrated
        log.debug("Migration check failed: %s", exc)
        return False
    if current is not None:
        _remember_head(current)
    return True


def _head_key(revision: str) -> dict:
    import airflow
    from airflow import settings

    return {"airflow": airflow.__version__, "db": str(settings.SQL_ALCHEMY_CONN), "revision": revision}


def _current_revision() -> str | None:
    """The single revision in the DB's ``alembic_version`` table, or None (no table, several heads)."""
    from airflow import settings
    from sqlalchemy import text

    try:
        with settings.engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception as exc:  # no such table yet: not migrated
        log.debug("No alembic revision: %s", exc)
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _marker_path() -> str:
    return os.path.join(os.environ["AIRFLOW_HOME"], HEAD_MARKER_NAME)


def _remembered_head() -> dict | None:
    import json

    try:
        with open(_marker_path()) as f:
            remembered = json.load(f)
    except (OSError, ValueError):
        return None
    return remembered if isinstance(remembered, dict) else None


def _remember_head(revision: str) -> None:
    import json

    path = _marker_path()
    try:
        with open(path + ".tmp", "w") as f:
            json.dump(_head_key(revision), f)
        os.replace(path + ".tmp", path)
    except OSError as exc:  # a read-only home: the full check runs every time
        log.debug("Could not remember the DB head: %s", exc)


def ensure_database() -> None:
    """Migrate the DB on first use or after an upgrade, and restore the seed rows a killed setup left out.

    Serialized across processes: a second ``cloudmarker`` waits for the first one's migration,
    then finds the DB at head.
    """
    from airflow import settings
    from airflow.utils import db

    with home_lock(wait_message="another cloudmarker process is setting up the metadata DB; waiting for it"):
        if not at_head():
            say(f"setting up the Airflow metadata DB at {settings.SQL_ALCHEMY_CONN} (first use: about 15 s)")
            db.initdb()
            return
        # What initdb does after migrating; both are idempotent and cost two queries when nothing is missing.
        db.add_default_pool_if_not_exists()
        db.synchronize_log_template()

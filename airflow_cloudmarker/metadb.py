"""The metadata DB of cloudmarker's own Airflow: made on first use, under a lock, repaired after a kill.

Two things went wrong on real laptops. Two ``cloudmarker -n`` started at once on a fresh home both
migrated the same SQLite file, and one died in the middle with an 80-line SQLAlchemy traceback.
And a run killed (``kill -9``, a closed lid) between Airflow stamping the schema and inserting its
seed rows (the default pool, the log template that every DAG run points to) left a DB at the head
revision that failed every later run with ``FOREIGN KEY constraint failed``. So setup holds a file
lock in AIRFLOW_HOME, and every start re-applies Airflow's own idempotent seeding.

Only Airflow's public ``airflow.utils.db`` functions are used.
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


def at_head() -> bool:
    """Whether the DB's schema is at this Airflow's head revision (Airflow's own check, one try)."""
    from airflow.utils import db

    try:
        db.check_migrations(timeout=0)
    except TimeoutError:
        return False
    except Exception as exc:  # no alembic table yet, an empty file: not migrated
        log.debug("Migration check failed: %s", exc)
        return False
    return True


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

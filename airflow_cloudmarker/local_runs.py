"""Which ``cloudmarker -n`` process owns which DAG run, and what to do with runs whose process died.

A run killed with ``kill -9`` (or a laptop that lost power) stays ``running`` in the metadata DB
forever, with its record batches (hundreds of MB for a large cloud) in the XCom store. With
``max_active_runs=1`` a stale running run would also block the service's scheduled runs of that
audit. Each ``cloudmarker -n`` process therefore holds an exclusive ``flock`` on a file of its own
under ``AIRFLOW_HOME/cloudmarker-runs/`` for its whole life, and names that file in the ``conf``
of every run it starts. The kernel releases the lock when the process dies however it dies, so a
later ``cloudmarker`` (``-n`` or the service) can tell a live owner from a dead one without pids
or clocks: runs whose owner's lock can be taken are failed and their batches deleted.

Runs without an owner (``airflow dags test``, the scheduler's own runs) are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("airflow_cloudmarker.local_runs")

OWNER_KEY = "cloudmarker_owner"
OWNERS_DIR = "cloudmarker-runs"


def _owners_dir() -> str:
    path = os.path.join(os.environ["AIRFLOW_HOME"], OWNERS_DIR)
    os.makedirs(path, exist_ok=True)
    return path


def _owner_path(token: str) -> str:
    return os.path.join(_owners_dir(), f"{token}.lock")


class RunOwner:
    """This process's claim on the runs it starts; ``conf`` goes into each run's ``run_conf``."""

    def __init__(self) -> None:
        self.token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._path = _owner_path(self.token)
        # Locked before it is visible under its name: a file without its lock means a dead owner.
        pending = f"{self._path}.new"
        self._handle: IO[str] | None = open(pending, "w")  # noqa: SIM115 - held until close()
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        os.replace(pending, self._path)

    @property
    def conf(self) -> dict[str, str]:
        """The ``run_conf`` of each run this process starts: it names the lock file that proves it alive."""
        return {OWNER_KEY: self.token}

    def close(self) -> None:
        """Release the claim (the runs are finished, or recovered by the caller)."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        self._handle.close()
        self._handle = None

    def __enter__(self) -> RunOwner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def owner_alive(token: str) -> bool:
    """Whether the process that wrote ``token`` still holds its lock (a missing file: it is gone)."""
    path = _owner_path(token)
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def owner_of(dag_run: Any) -> str | None:
    """The owner token in a run's conf, or None for a run no ``cloudmarker -n`` started (never touched)."""
    conf = getattr(dag_run, "conf", None)
    token = conf.get(OWNER_KEY) if isinstance(conf, dict) else None
    return token if isinstance(token, str) and token else None


@dataclass
class Recovered:
    """A run failed because its ``cloudmarker -n`` died: the caller names it in one line."""

    dag_id: str
    run_id: str

    def message(self) -> str:
        """The one line ``cloudmarker -n`` and the service print for it."""
        return (
            f"run {self.run_id} of audit {self.dag_id} was left running by a process that died; "
            "marked it failed and deleted its record batches"
        )


def fail_run(dag_run: Any, session: Any) -> None:
    """Mark ``dag_run`` and its unfinished task instances failed (their process is gone)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    now = dt.datetime.now(dt.UTC)
    finished = {str(s) for s in State.finished}
    tis = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
    ).all()
    for ti in tis:
        if ti.state is None or str(ti.state) not in finished:
            ti.state = TaskInstanceState.FAILED
            ti.end_date = now
    dag_run.state = DagRunState.FAILED
    dag_run.end_date = now


def unfinished_runs(session: Any, dag_id: str | None = None) -> list[Any]:
    """The DAG runs (of ``dag_id``, or of every DAG) still ``running`` or ``queued``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    query = select(DagRun).where(DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))
    if dag_id is not None:
        query = query.where(DagRun.dag_id == dag_id)
    return list(session.scalars(query).all())


def fail_runs_of(owner: RunOwner, dag_id: str) -> Any:
    """Fail ``owner``'s unfinished runs of ``dag_id`` (after an interrupt); return the last one, detached, or None."""
    from airflow import settings

    with settings.Session() as session:
        mine = [r for r in unfinished_runs(session, dag_id) if owner_of(r) == owner.token]
        for dag_run in mine:
            fail_run(dag_run, session)
        session.commit()
        if not mine:
            return None
        session.refresh(mine[-1])
        session.expunge(mine[-1])
        return mine[-1]


def recover_abandoned_runs(delete_batches: Callable[[Any], None]) -> list[Recovered]:
    """Fail the runs a dead ``cloudmarker -n`` left running or queued, and delete their batches.

    ``delete_batches(dag_run)`` removes a run's XComs and their files. Returns what was recovered,
    so the caller can say so in one line per run.
    """
    from airflow import settings

    abandoned: list[Any] = []
    dead_owners: set[str] = set()
    with settings.Session() as session:
        for dag_run in unfinished_runs(session):
            token = owner_of(dag_run)
            if token is None or owner_alive(token):
                continue
            fail_run(dag_run, session)
            abandoned.append(dag_run)
            dead_owners.add(token)
        session.commit()
        recovered = [Recovered(dag_run.dag_id, dag_run.run_id) for dag_run in abandoned]
        for dag_run in abandoned:
            delete_batches(dag_run)
    for token in dead_owners:
        with contextlib.suppress(OSError):
            os.unlink(_owner_path(token))
    _remove_stale_owner_files()
    return recovered


def _remove_stale_owner_files() -> None:
    """Delete owner files whose process is gone (their runs finished or were recovered)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(_owners_dir()):
            if entry.name.endswith(".lock") and not owner_alive(entry.name[: -len(".lock")]):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

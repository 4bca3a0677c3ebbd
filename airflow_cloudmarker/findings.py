"""Findings lifecycle: stable finding ids, severity, and new / open / resolved across runs.

An event is a *finding*: the same open port found every day is one finding, not one alert a
day. Its id is a fingerprint of what was found (cloud, event type, resource, the event's own
detail), independent of the run. Per audit, the set of open findings is kept in a small JSON
state file in the same object storage as the XComs. Each run annotates its events with
``finding_id``, ``severity``, ``first_seen``, ``last_seen`` and ``status`` (``new`` or
``open``), and emits a ``resolved`` event for each finding that was open last run and is gone.

Two safety rules:

* A finding is only resolved when the cloud fetch and the event check that would have found
  it both succeeded in this run; otherwise it is carried over unchanged.
* The update is idempotent per run: the state remembers the run that last wrote it and the
  findings before that run, so a retried task computes the same statuses again.

Writes are atomic (temporary file renamed into place) and, on a local file system, serialized
by an exclusive lock, so concurrent runs of one audit cannot corrupt the state.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_cloudmarker import records as rec
from airflow_cloudmarker.util import SEVERITIES

DEFAULT_SEVERITY = "medium"
STATUSES_OF_CHANGE = ("new", "resolved")
STATE_VERSION = 1
#: The com fields of an event kept in the state, to describe a resolved finding.
_KEPT_COM = ("cloud_type", "record_type", "reference", "description", "recommendation", "severity", "finding_key")


def finding_id(event: dict) -> str:
    """A stable fingerprint of what an event found: the same problem in two runs has the same id."""
    com = event.get("com") or {}
    parts = [
        str(com.get("cloud_type", "")),
        str(com.get("record_type", "")),
        str(com.get("reference", "")),
        str(com.get("finding_key", "")),
    ]
    if not parts[2] and not parts[3]:
        # No resource reference or detail: fall back to the event's own ext, minus run metadata.
        parts.append(rec.dumps({k: v for k, v in (event.get("ext") or {}).items() if k != "audit_version"}).decode())
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def normalize_severity(value: Any) -> str:
    """The event's severity if it is one of SEVERITIES, else the default."""
    text = str(value).lower() if value is not None else ""
    return text if text in SEVERITIES else DEFAULT_SEVERITY


@dataclass
class Scope:
    """Which clouds and event plugins completed in this run (only their findings may resolve)."""

    failed_clouds: set[str] = field(default_factory=set)
    failed_events: set[str] = field(default_factory=set)

    def complete(self, finding: dict) -> bool:
        return finding.get("cloud_key") not in self.failed_clouds and finding.get("event_key") not in self.failed_events


@dataclass
class Outcome:
    new: int = 0
    open: int = 0
    resolved: int = 0
    carried: int = 0


class StateStore:
    """One audit's findings state as a JSON file under a base URL (``file://`` or an object store)."""

    def __init__(self, base_url: str, audit_key: str):
        self.base_url = base_url.rstrip("/")
        self.audit_key = audit_key
        url = urlsplit(self.base_url)
        self.local_dir = unquote(url.path) if url.scheme in ("file", "") else None

    @property
    def location(self) -> str:
        return f"{self.base_url}/{self.audit_key}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-modify-write cycles of this audit's state (local files; object stores rely on
        the DAG's max_active_runs=1)."""
        if self.local_dir is None:
            yield
            return
        import fcntl

        os.makedirs(self.local_dir, exist_ok=True)
        with open(os.path.join(self.local_dir, f".{self.audit_key}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> dict:
        if self.local_dir is not None:
            path = os.path.join(self.local_dir, f"{self.audit_key}.json")
            if not os.path.exists(path):
                return {}
            with open(path, "rb") as f:
                return rec.loads(f.read())
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(self.location)
        return rec.loads(path.read_bytes()) if path.exists() else {}

    def save(self, state: dict) -> None:
        data = rec.dumps(state)
        if self.local_dir is not None:
            os.makedirs(self.local_dir, exist_ok=True)
            final = os.path.join(self.local_dir, f"{self.audit_key}.json")
            tmp = f"{final}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            return
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(self.location).write_bytes(data)  # one PUT: atomic in object stores


def track(
    store: StateStore,
    run_id: str,
    run_time: str,
    events: Iterable[dict],
    scope: Scope,
    emit: Callable[[dict], None],
) -> Outcome:
    """Annotate ``events`` (each passed to ``emit``), emit resolved events, and save the new state.

    ``run_id`` identifies the Airflow run (a retry of the same run recomputes the same statuses);
    ``run_time`` (ISO 8601) becomes ``first_seen``/``last_seen``.

    ``events`` must carry ``com.cloud_key`` (the cloud plugin key of the checked record) and
    ``com.origin_key`` (the event plugin key), which the check task stamps.
    """
    outcome = Outcome()
    with store.locked():
        state = store.load()
        # A retry of this run starts from the same point as its first try did.
        baseline = state.get("previous" if state.get("last_run") == run_id else "findings") or {}
        current: dict[str, dict] = {}
        for event in events:
            com = event.setdefault("com", {})
            fid = finding_id(event)
            known = baseline.get(fid) or current.get(fid)
            com["finding_id"] = fid
            com["severity"] = normalize_severity(com.get("severity"))
            com["first_seen"] = known["first_seen"] if known else run_time
            com["last_seen"] = run_time
            com["status"] = "open" if fid in baseline else "new"
            if fid not in current:
                if fid in baseline:
                    outcome.open += 1
                else:
                    outcome.new += 1
            current[fid] = {
                "first_seen": com["first_seen"],
                "last_seen": run_time,
                "cloud_key": com.get("cloud_key"),
                "event_key": com.get("origin_key"),
                "ext": event.get("ext") or {},
                "com": {k: com[k] for k in _KEPT_COM if k in com},
            }
            emit(event)
        for fid, finding in baseline.items():
            if fid in current:
                continue
            if not scope.complete(finding):
                current[fid] = finding  # its cloud or check failed this run: nothing can be concluded
                outcome.carried += 1
                continue
            emit(resolved_event(fid, finding, run_time))
            outcome.resolved += 1
        store.save(
            {
                "version": STATE_VERSION,
                "audit_key": store.audit_key,
                "last_run": run_id,
                "updated": run_time,
                "previous": baseline,
                "findings": current,
            }
        )
    return outcome


def resolved_event(fid: str, finding: dict, run_time: str) -> dict:
    """The event telling that a finding open last run is gone, with its last description."""
    com = copy.deepcopy(finding.get("com") or {})
    com.update(
        {
            "finding_id": fid,
            "status": "resolved",
            "first_seen": finding.get("first_seen"),
            "last_seen": finding.get("last_seen"),
            "resolved_at": run_time,
            "cloud_key": finding.get("cloud_key"),
        }
    )
    return {"ext": copy.deepcopy(finding.get("ext") or {}), "com": com}


def keeps_every_event(plugin_class: type) -> bool:
    """Stores used as alerts keep every event, whatever ``alert_on`` says (they are the record)."""
    explicit = getattr(plugin_class, "keeps_every_event", None)
    if explicit is not None:
        return bool(explicit)
    return plugin_class.__module__.startswith("airflow_cloudmarker.stores.")


def state_base_url() -> str:
    """Where findings state lives: ``[cloudmarker] findings_path``, else beside the XComs."""
    from airflow.configuration import conf

    configured = conf.get("cloudmarker", "findings_path", fallback="")
    if configured:
        return configured
    xcom_path = conf.get("common.io", "xcom_objectstorage_path", fallback="")
    if xcom_path:
        return xcom_path.rstrip("/") + "/cloudmarker-findings"
    home = os.path.expanduser(os.environ.get("AIRFLOW_HOME") or "~/airflow")
    return "file://" + os.path.join(home, "cloudmarker-findings")

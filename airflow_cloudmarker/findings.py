"""Findings lifecycle: stable finding ids, severity, and new / open / resolved across runs.

An event is a *finding*: the same open port found every day is one finding, not one alert a
day. Its id is a fingerprint of what was found (cloud, event type, resource, the event's own
detail), independent of the run. Per audit, the set of open findings is kept in the same object
storage as the XComs (see ``StateStore``). Each run annotates its events with
``finding_id``, ``severity``, ``first_seen``, ``last_seen`` and ``status`` (``new`` or
``open``), and emits a ``resolved`` event for each finding that was open last run and is gone.

Two safety rules:

* A finding is only resolved when the cloud fetch and the event check that would have found
  it both succeeded in this run; otherwise it is carried over unchanged.
* The update is idempotent per run: the state remembers the run that last wrote it and the
  findings before that run, so a retried task computes the same statuses again.

Updates are atomic (a complete snapshot first, then one small HEAD file replaced in one step) and,
on a local file system, serialized by an exclusive lock, so concurrent runs of one audit cannot
corrupt the state.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_cloudmarker import records as rec
from airflow_cloudmarker.util import SEVERITIES

DEFAULT_SEVERITY = "medium"
STATUSES_OF_CHANGE = ("new", "resolved")
STATE_VERSION = 2
HEAD_NAME = "HEAD.json"
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
    """One audit's findings state under a base URL (``file://`` or an object store such as ``s3://``).

    Layout: ``<base>/<audit>/HEAD.json`` names the current snapshot, the run that wrote it and the
    snapshot it started from; each snapshot is a JSON-lines file, one finding a line, written and
    read as a stream so memory does not grow with the number of findings. A snapshot is complete
    before HEAD points to it, and HEAD is replaced in one step (a rename, or one PUT).
    """

    def __init__(self, base_url: str, audit_key: str):
        self.base_url = base_url.rstrip("/")
        self.audit_key = audit_key
        url = urlsplit(self.base_url)
        self.local_dir = os.path.join(unquote(url.path), audit_key) if url.scheme in ("file", "") else None

    @property
    def location(self) -> str:
        return f"{self.base_url}/{self.audit_key}"

    def _path(self, name: str):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(f"{self.location}/{name}")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize updates of this audit's state (local files; object stores rely on the DAG's
        max_active_runs=1)."""
        if self.local_dir is None:
            yield
            return
        import fcntl

        os.makedirs(self.local_dir, exist_ok=True)
        with open(os.path.join(self.local_dir, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def head(self) -> dict:
        path = self._path(HEAD_NAME)
        return rec.loads(path.read_bytes()) if path.exists() else {}

    def write_head(self, head: dict) -> None:
        data = rec.dumps(head)
        if self.local_dir is None:
            self._path(HEAD_NAME).write_bytes(data)  # one PUT: atomic in object stores
            return
        final = os.path.join(self.local_dir, HEAD_NAME)
        tmp = f"{final}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    def read_snapshot(self, name: str | None) -> Iterator[dict]:
        """Stream the findings of a snapshot (none for a first run)."""
        if not name:
            return
        with self._path(name).open("rb") as f:
            for line in f:
                if line.strip():
                    yield rec.loads(line)

    @contextlib.contextmanager
    def new_snapshot(self, run_id: str) -> Iterator[tuple[str, Callable[[dict], None]]]:
        """Write a snapshot line by line; yields its name and a function writing one finding."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
        name = f"{safe}-{uuid.uuid4().hex[:8]}.jsonl"
        if self.local_dir is not None:
            os.makedirs(self.local_dir, exist_ok=True)
        with self._path(name).open("wb") as f:
            yield name, lambda finding: f.write(rec.dumps(finding) + b"\n")

    def prune(self, keep: set[str | None]) -> None:
        """Delete snapshots HEAD no longer names (a retried run's first try, older runs)."""
        folder = self._path("")
        if not folder.exists():
            return
        for path in folder.iterdir():
            if path.name.endswith(".jsonl") and path.name not in keep:
                path.unlink(missing_ok=True)

    def current_findings(self) -> dict[str, dict]:
        """The open findings after the latest run, by id (for tools and tests; loads them all)."""
        return {f["id"]: f for f in self.read_snapshot(self.head().get("snapshot"))}


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
    ``run_time`` (ISO 8601) becomes ``first_seen``/``last_seen``. ``events`` must carry
    ``com.cloud_key`` (the cloud plugin key of the checked record) and ``com.origin_key`` (the
    event plugin key), which the check task stamps. Memory holds one id and one time per finding.
    """
    outcome = Outcome()
    with store.locked():
        head = store.head()
        # A retry of this run starts from the same point as its first try did.
        baseline = head.get("previous") if head.get("run_id") == run_id else head.get("snapshot")
        first_seen = {f["id"]: sys.intern(f["first_seen"]) for f in store.read_snapshot(baseline)}
        seen: set[str] = set()
        with store.new_snapshot(run_id) as (snapshot, write):
            for event in events:
                com = event.setdefault("com", {})
                fid = finding_id(event)
                known = fid in first_seen
                com["finding_id"] = fid
                com["severity"] = normalize_severity(com.get("severity"))
                com["first_seen"] = first_seen[fid] if known else run_time
                com["last_seen"] = run_time
                com["status"] = "open" if known else "new"
                if fid not in seen:
                    seen.add(fid)
                    if known:
                        outcome.open += 1
                    else:
                        outcome.new += 1
                    write(
                        {
                            "id": fid,
                            "first_seen": com["first_seen"],
                            "last_seen": run_time,
                            "cloud_key": com.get("cloud_key"),
                            "event_key": com.get("origin_key"),
                            "ext": event.get("ext") or {},
                            "com": {k: com[k] for k in _KEPT_COM if k in com},
                        }
                    )
                emit(event)
            for finding in store.read_snapshot(baseline):
                if finding["id"] in seen:
                    continue
                if not scope.complete(finding):
                    write(finding)  # its cloud or check failed this run: nothing can be concluded
                    outcome.carried += 1
                    continue
                emit(resolved_event(finding, run_time))
                outcome.resolved += 1
        store.write_head(
            {
                "version": STATE_VERSION,
                "audit_key": store.audit_key,
                "run_id": run_id,
                "updated": run_time,
                "snapshot": snapshot,
                "previous": baseline,
                "counts": {"new": outcome.new, "open": outcome.open, "resolved": outcome.resolved},
            }
        )
        store.prune({snapshot, baseline})
    return outcome


def resolved_event(finding: dict, run_time: str) -> dict:
    """The event telling that a finding open last run is gone, with its last description."""
    com = copy.deepcopy(finding.get("com") or {})
    com.update(
        {
            "finding_id": finding["id"],
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

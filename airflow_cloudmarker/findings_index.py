"""A small index beside the findings state, so the UI answers from a few lines instead of a whole snapshot.

The findings task writes it while it writes a snapshot (``findings.track``); the UI plugin reads it.
Under ``<findings path>/<audit>/index/``:

* ``snapshots/<snapshot stem>/<severity>.jsonl``: one compact row per open finding (the table's
  columns only), one file per severity, in the order the run found them. The default order of the
  table (most severe first) is these files one after the other, so a first page, filtered by
  severity or not, reads ``limit`` lines, whatever the number of findings.
* ``snapshots/<snapshot stem>/meta.json``: the run's summary (``RunSummary``): open findings by
  severity and status, new, resolved and muted counts. HEAD.json names the snapshot, so the UI
  reads HEAD and this file to know an audit's state.
* ``changes/<snapshot stem>.jsonl``: the rows this run opened (``new``) and ``resolved``.
* ``runs.jsonl``: one summary line per run (the latest ``MAX_RUNS``), so the history of counts
  survives the snapshots, which are replaced every run.

The index is derived data: HEAD.json and the snapshots stay the truth, and a state without an
index (written by an older release) is still shown, by streaming its snapshot.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import records as rec
from airflow_cloudmarker.util import SEVERITIES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

INDEX_DIR = "index"
INDEX_VERSION = 1
#: Runs kept in runs.jsonl (one short line each).
MAX_RUNS = 500
#: Runs whose changes (what they opened and resolved) are kept for the Changes tab.
MAX_CHANGED_RUNS = 60
#: The com fields of a finding a row carries (the table's columns, the export's fields).
ROW_FIELDS = (
    "record_type",
    "reference",
    "description",
    "recommendation",
    "cloud_type",
    "title",
    "check_id",
    "mute_reason",
)
STATUSES = ("new", "open", "resolved")
#: ``sort`` values: the field and its direction (``-`` first: descending); ``severity`` is the index order.
SORT_FIELDS = ("severity", "status", "first_seen", "last_seen", "record_type", "reference", "id")
DEFAULT_SORT = "severity"
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_STATUS_RANK = {name: rank for rank, name in enumerate(STATUSES)}

log = logging.getLogger(__name__)


def stem(snapshot_name: str) -> str:
    """The snapshot's name without ``.jsonl``: the name of its index folder and changes file."""
    return snapshot_name.removesuffix(".jsonl")


def row(com: dict, status: str, first_seen: Any, last_seen: Any, finding_id: str, cloud: Any) -> dict:
    """The compact row of one finding: what the table shows and the export writes."""
    severity = com.get("severity")
    out = {
        "id": finding_id,
        "severity": severity if severity in _SEVERITY_RANK else "medium",
        "status": status,
        "cloud": cloud,
        "first_seen": first_seen,
        "last_seen": last_seen,
    }
    for name in ROW_FIELDS:
        value = com.get(name)
        if value is not None:
            out[name] = value if type(value) in _PLAIN or isinstance(value, (str, int, float, bool)) else str(value)
    if com.get("muted") is True:
        out["muted"] = True
    if status == "resolved":
        out["resolved_at"] = com.get("resolved_at")
    return out


_PLAIN = frozenset((str, int, float, bool))


def _counts() -> dict[str, dict[str, int]]:
    return {severity: {"new": 0, "open": 0} for severity in SEVERITIES}


@dataclass
class RunSummary:
    """One run's counts: its open findings by severity and status, and what it opened, resolved, muted."""

    run_id: str
    time: str
    snapshot: str
    new: int = 0
    open: int = 0
    resolved: int = 0
    muted: int = 0
    carried: int = 0
    by_severity: dict[str, dict[str, int]] = field(default_factory=_counts)
    resolved_by_severity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    version: int = INDEX_VERSION

    @property
    def total_open(self) -> int:
        """Findings open after the run: new ones, ones still open, and ones carried over unchanged."""
        return self.new + self.open + self.carried

    def open_by_severity(self) -> dict[str, int]:
        """Open findings (new or not) per severity."""
        return {s: counts["new"] + counts["open"] for s, counts in self.by_severity.items()}

    def as_dict(self) -> dict:
        """The summary as stored (meta.json, a runs.jsonl line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunSummary:
        """Read a stored summary back; unknown keys (a later release's) are ignored."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        summary = cls(**known)
        summary.by_severity = {**_counts(), **(summary.by_severity or {})}
        return summary


class IndexWriter:
    """Writes the index of one snapshot as the findings task streams its findings (one open file per severity).

    ``path_of(name)`` gives the ObjectStoragePath of a name inside the audit's state folder, so the
    index lives wherever the state does (local files, S3, GCS, Azure Blob).
    """

    #: Lines are written in chunks of about this size per file: a write through an object-storage
    #: file costs more than encoding the row.
    CHUNK_BYTES = 1 << 20

    def __init__(self, path_of: Callable[[str], Any], run_id: str, run_time: str, snapshot_name: str):
        self._path_of = path_of
        self.stem = stem(snapshot_name)
        self.summary = RunSummary(run_id=run_id, time=run_time, snapshot=snapshot_name)
        self._files: dict[str, Any] = {}
        self._pending: dict[str, list[bytes]] = {}
        self._pending_bytes: dict[str, int] = {}
        self._changes = self._changes_file
        self._snapshot_files = {severity: self._snapshot_file(severity) for severity in SEVERITIES}

    def _write(self, name: str, data: dict | bytes) -> None:
        line = data if type(data) is bytes else rec.dumps(data)
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = []
            self._pending_bytes[name] = 0
        pending.append(line)
        self._pending_bytes[name] += len(line) + 1
        if self._pending_bytes[name] >= self.CHUNK_BYTES:
            self._flush(name)

    def _flush(self, name: str) -> None:
        """Write the queued lines of one file as one chunk (the file is opened on its first chunk)."""
        pending = self._pending.get(name)
        if not pending:
            return
        file = self._files.get(name)
        if file is None:
            path = self._path_of(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            file = self._files[name] = path.open("wb")
        file.write(b"\n".join(pending) + b"\n")
        self._pending[name] = []
        self._pending_bytes[name] = 0

    def _snapshot_file(self, severity: str) -> str:
        return f"{INDEX_DIR}/snapshots/{self.stem}/{severity}.jsonl"

    @property
    def _changes_file(self) -> str:
        return f"{INDEX_DIR}/changes/{self.stem}.jsonl"

    def found(self, com: dict) -> None:
        """A finding of this run (its annotated com: status new or open)."""
        status = com["status"]
        line = row(com, status, com.get("first_seen"), com.get("last_seen"), com["finding_id"], com.get("cloud_key"))
        summary = self.summary
        summary.by_severity[line["severity"]][status] += 1
        encoded = rec.dumps(line)  # the same line in both files
        if status == "new":
            summary.new += 1
            self._write(self._changes, encoded)
        else:
            summary.open += 1
        if line.get("muted"):
            summary.muted += 1
        self._write(self._snapshot_files[line["severity"]], encoded)

    def carried(self, finding: dict) -> None:
        """A finding kept unchanged because its cloud or check failed this run: still open."""
        line = row(
            finding.get("com") or {},
            "open",
            finding.get("first_seen"),
            finding.get("last_seen"),
            finding["id"],
            finding.get("cloud_key"),
        )
        line["carried"] = True
        self.summary.by_severity[line["severity"]]["open"] += 1
        self.summary.carried += 1
        self._write(self._snapshot_file(line["severity"]), line)

    def resolved(self, com: dict) -> None:
        """A finding open last run and gone now (the com of its resolved event)."""
        line = row(
            com, "resolved", com.get("first_seen"), com.get("last_seen"), com["finding_id"], com.get("cloud_key")
        )
        self.summary.resolved += 1
        self.summary.resolved_by_severity[line["severity"]] += 1
        self.summary.muted += 1 if line.get("muted") else 0
        self._write(self._changes_file, line)

    def close(self) -> None:
        """Write what is queued, close every file and write meta.json (before HEAD names the snapshot)."""
        for name in list(self._pending):
            self._flush(name)
        for file in self._files.values():
            file.close()
        self._files.clear()
        self._path_of(f"{INDEX_DIR}/snapshots/{self.stem}/meta.json").parent.mkdir(parents=True, exist_ok=True)
        self._path_of(f"{INDEX_DIR}/snapshots/{self.stem}/meta.json").write_bytes(rec.dumps(self.summary.as_dict()))

    def abort(self) -> None:
        """After a failed update: close and delete what was written (best effort; the next prune retries)."""
        self._pending.clear()
        for file in self._files.values():
            with contextlib.suppress(Exception):
                file.close()
        self._files.clear()
        with contextlib.suppress(Exception):
            _remove_tree(self._path_of(f"{INDEX_DIR}/snapshots/{self.stem}"))
        with contextlib.suppress(Exception):
            self._path_of(self._changes_file).unlink(missing_ok=True)


def record_run(path_of: Callable[[str], Any], summary: RunSummary) -> None:
    """Add (or, for a retried run, replace) the run's line in runs.jsonl, keeping the latest MAX_RUNS."""
    runs = [r for r in read_runs(path_of) if r.run_id != summary.run_id]
    runs.append(summary)
    runs = runs[-MAX_RUNS:]
    data = b"".join(rec.dumps(r.as_dict()) + b"\n" for r in runs)
    path_of(f"{INDEX_DIR}/runs.jsonl").write_bytes(data)


def read_runs(path_of: Callable[[str], Any]) -> list[RunSummary]:
    """Every run summary of runs.jsonl, oldest first ([] before the first indexed run); bad lines are skipped."""
    path = path_of(f"{INDEX_DIR}/runs.jsonl")
    if not path.exists():
        return []
    runs = []
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            runs.append(RunSummary.from_dict(rec.loads(line)))
    return runs


def prune(path_of: Callable[[str], Any], keep: set[str | None]) -> None:
    """Delete the index of snapshots no longer kept, and changes of runs older than MAX_CHANGED_RUNS."""
    keep_stems = {stem(name) for name in keep if name}
    folder = path_of(f"{INDEX_DIR}/snapshots")
    if folder.exists():
        for path in folder.iterdir():
            if path.name not in keep_stems:
                _remove_tree(path)
    changes = path_of(f"{INDEX_DIR}/changes")
    if changes.exists():
        wanted = {stem(r.snapshot) for r in read_runs(path_of)[-MAX_CHANGED_RUNS:]} | keep_stems
        for path in changes.iterdir():
            if stem(path.name) not in wanted:
                path.unlink(missing_ok=True)


def _remove_tree(path: Any) -> None:
    if not path.exists():
        return
    if path.is_dir():
        for child in path.iterdir():
            _remove_tree(child)
        with contextlib.suppress(FileNotFoundError):
            path.rmdir()
    else:
        path.unlink(missing_ok=True)


# -- reading: filter, sort, page -----------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """What the table asks for: filters, an order and a page."""

    statuses: frozenset[str] = frozenset()
    severities: tuple[str, ...] = ()
    q: str = ""
    sort: str = DEFAULT_SORT
    limit: int = 50
    offset: int = 0

    @property
    def wanted_severities(self) -> tuple[str, ...]:
        """The severities to read, most severe first (all when none is asked for)."""
        return tuple(s for s in SEVERITIES if not self.severities or s in self.severities)

    @property
    def filters_rows(self) -> bool:
        """True when rows must be read to be counted (a status or text filter)."""
        return bool(self.statuses or self.q)


def parse_sort(sort: str) -> tuple[str, bool]:
    """``-last_seen`` -> ("last_seen", True); ValueError naming the allowed values for anything else."""
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if name not in SORT_FIELDS:
        allowed = ", ".join(SORT_FIELDS)
        raise ValueError(f"sort must be one of {allowed} (a leading - sorts descending), not {sort!r}")
    return name, descending


def matches(line: dict, query: Query) -> bool:
    """True when a row passes the query's status, severity and text filters."""
    if query.statuses and line.get("status") not in query.statuses:
        return False
    if query.severities and line.get("severity") not in query.severities:
        return False
    if query.q:
        needle = query.q.casefold()
        haystack = (str(line.get(k) or "") for k in ("id", "reference", "record_type", "description", "title"))
        return any(needle in text.casefold() for text in haystack)
    return True


def sort_key(name: str) -> Callable[[dict], tuple]:
    """A key ordering rows by ``name`` ascending; ties keep the index order (most severe first)."""
    if name == "severity":
        return lambda r: (_SEVERITY_RANK.get(r.get("severity"), len(SEVERITIES)),)
    if name == "status":
        return lambda r: (_STATUS_RANK.get(r.get("status"), len(STATUSES)),)
    return lambda r: (str(r.get(name) or ""),)


def page(rows: Iterable[dict], query: Query) -> tuple[int, list[dict]]:
    """(total matching, the page) of ``rows`` (in index order) for ``query``.

    Memory holds the page, or for another order than the index's the ``offset + limit`` first rows
    of that order (a bounded heap), never every row.
    """
    name, descending = parse_sort(query.sort)
    wanted = query.offset + query.limit
    total = 0
    if name == "severity" and not descending:
        found: list[dict] = []
        for line in rows:
            if matches(line, query):
                if query.offset <= total < wanted:
                    found.append(line)
                total += 1
        return total, found
    key = sort_key(name)
    heap: list[tuple] = []
    for position, line in enumerate(rows):
        if not matches(line, query):
            continue
        total += 1
        item = _heap_item(key(line), position, descending, line)
        if len(heap) < wanted:
            heapq.heappush(heap, item)
        elif wanted and item > heap[0]:
            heapq.heapreplace(heap, item)
    ordered = [item[-1] for item in sorted(heap, reverse=True)]
    return total, ordered[query.offset : wanted]


class _Reversed:
    """Wraps a key so that a min-heap keeps the largest ones (descending order)."""

    __slots__ = ("key",)

    def __init__(self, key: tuple):
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return self.key > other.key

    def __gt__(self, other: _Reversed) -> bool:
        return self.key < other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.key == other.key


def _heap_item(key: tuple, position: int, descending: bool, line: dict) -> tuple:
    """A heap entry whose *largest* entries are the first rows of the wanted order.

    The heap is a min-heap of the ``offset + limit`` best rows: its smallest entry is the worst of
    them, replaced when a better row comes. Ascending order: the best rows have the smallest keys,
    so the key is reversed; ties go to the earlier position (the index order) in both directions.
    """
    ordered = key if descending else _Reversed(key)
    return (ordered, -position, line)


def read_lines(path: Any, skip: int = 0) -> Iterator[dict]:
    """The rows of one index file, streamed; ``skip`` first lines are passed over without parsing."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for number, line in enumerate(f):
            if number < skip or not line.strip():
                continue
            yield rec.loads(line)

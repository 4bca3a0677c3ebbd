"""What the UI reads of the findings state: audits, their open findings, runs and a run's changes.

Everything is read through the same ObjectStoragePath as ``findings`` writes it (local files, S3,
GCS, Azure Blob under the XCom object-storage path), and streamed: a page reads HEAD.json, the
index's meta.json and the rows of the page, never a whole snapshot (``findings_index``). A state
written before the index existed is read from its snapshot, row by row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import findings
from airflow_cloudmarker import findings_index as index
from airflow_cloudmarker.ui.links import console_url
from airflow_cloudmarker.util import SEVERITIES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: The columns of the CSV export, in order.
CSV_COLUMNS = (
    "id",
    "severity",
    "status",
    "muted",
    "record_type",
    "reference",
    "description",
    "recommendation",
    "cloud",
    "cloud_type",
    "check_id",
    "title",
    "first_seen",
    "last_seen",
    "resolved_at",
    "console_url",
)
MAX_LIMIT = 1000


class BadQuery(ValueError):
    """A query parameter the API cannot answer; the message names it and the values it takes."""


def build_query(
    status: str = "", severity: str = "", q: str = "", sort: str = "", limit: int = 50, offset: int = 0
) -> index.Query:
    """A checked ``Query`` from the API's parameters (comma-separated lists); BadQuery says what is wrong."""
    statuses = _values(status, index.STATUSES, "status")
    severities = _values(severity, SEVERITIES, "severity")
    try:
        index.parse_sort(sort or index.DEFAULT_SORT)
    except ValueError as error:
        raise BadQuery(str(error)) from None
    if not 0 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be between 0 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise BadQuery(f"offset must be 0 or more, not {offset}")
    return index.Query(frozenset(statuses), tuple(severities), q.strip(), sort or index.DEFAULT_SORT, limit, offset)


def _values(text: str, allowed: tuple[str, ...], name: str) -> list[str]:
    values = [v.strip().lower() for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise BadQuery(f"{name} takes {', '.join(allowed)} (comma-separated), not {', '.join(wrong)}")
    return values


def with_link(line: dict) -> dict:
    """A row as the API returns it: ``muted`` always present, and a console link where the reference allows."""
    out = dict(line)
    out["muted"] = bool(line.get("muted"))
    out["console_url"] = console_url(line.get("reference"))
    return out


def audit_keys(base_url: str) -> list[str]:
    """The audits with a findings state under ``base_url`` (their folder holds a HEAD.json), sorted."""
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(base_url.rstrip("/") + "/")
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / findings.HEAD_NAME).exists())


@dataclass
class AuditState:
    """One audit's current findings state as the UI reads it: HEAD, and the summary of the run it names."""

    key: str
    store: findings.StateStore
    head: dict
    summary: index.RunSummary | None
    indexed: bool
    damaged: str | None = None

    @classmethod
    def read(cls, base_url: str, key: str) -> AuditState:
        """Read HEAD.json and the index's meta.json (or count the snapshot of a state without an index)."""
        store = findings.StateStore(base_url, key)
        try:
            head = store.head()
        except findings.DamagedState as damage:
            return cls(key, store, {}, None, False, damaged=str(damage))
        name = head.get("snapshot")
        if not name:
            return cls(key, store, head, None, False)
        meta = store._path(f"{index.INDEX_DIR}/snapshots/{index.stem(name)}/meta.json")
        if meta.exists():
            summary = index.RunSummary.from_dict(findings.rec.loads(meta.read_bytes()))
            return cls(key, store, head, summary, True)
        state = cls(key, store, head, None, False)
        state.summary = state._count_snapshot()
        return state

    def _count_snapshot(self) -> index.RunSummary:
        """A summary of a state without index (an older release wrote it), counted from its snapshot."""
        counts = self.head.get("counts") or {}
        summary = index.RunSummary(self.head.get("run_id") or "", self.head.get("updated") or "", self.head["snapshot"])
        for line in self._snapshot_rows():
            summary.by_severity[line["severity"]][line["status"]] += 1
            setattr(summary, line["status"], getattr(summary, line["status"]) + 1)
        summary.resolved = counts.get("resolved", 0) if isinstance(counts.get("resolved"), int) else 0
        return summary

    def _snapshot_rows(self) -> Iterator[dict]:
        updated = self.head.get("updated")
        for finding in self.store.read_snapshot(self.head.get("snapshot")):
            status = "new" if finding.get("first_seen") == updated else "open"
            com = finding.get("com") or {}
            com = {**com, "severity": findings.normalize_severity(com.get("severity"), com.get("check_id"))}
            yield index.row(
                com, status, finding["first_seen"], finding.get("last_seen"), finding["id"], finding.get("cloud_key")
            )

    def overview(self) -> dict:
        """The audit's line in ``GET /api/v1/audits``."""
        summary = self.summary
        latest = {"run_id": summary.run_id, "time": summary.time} if summary else None
        return {
            "audit": self.key,
            "open": summary.total_open if summary else 0,
            "by_severity": summary.open_by_severity() if summary else dict.fromkeys(SEVERITIES, 0),
            "new": summary.new if summary else 0,
            "resolved": summary.resolved if summary else 0,
            "muted": summary.muted if summary else 0,
            "latest_run": latest,
            "damaged": self.damaged,
        }

    def rows(self, severities: Iterable[str] = SEVERITIES) -> Iterator[dict]:
        """The open findings of ``severities``, most severe first (the index order), streamed."""
        wanted = tuple(severities)
        if not self.summary:
            return
        if not self.indexed:
            for severity in wanted:  # no index: one pass over the snapshot per severity
                yield from (r for r in self._snapshot_rows() if r["severity"] == severity)
            return
        for severity in wanted:
            yield from index.read_lines(self._index_file(severity))

    def _index_file(self, severity: str) -> Any:
        return self.store._path(f"{index.INDEX_DIR}/snapshots/{index.stem(self.summary.snapshot)}/{severity}.jsonl")

    def page(self, query: index.Query) -> tuple[int, list[dict]]:
        """(total, rows of the page) of the open findings matching ``query``."""
        if self.indexed and not query.filters_rows and query.sort == index.DEFAULT_SORT:
            return self._first_rows(query)
        return index.page(self.rows(query.wanted_severities), query)

    def _first_rows(self, query: index.Query) -> tuple[int, list[dict]]:
        """A page in index order without a row filter: counts from meta.json, ``limit`` lines read."""
        open_by = self.summary.open_by_severity()
        total = sum(open_by[s] for s in query.wanted_severities)
        skip, found = query.offset, []
        for severity in query.wanted_severities:
            if len(found) >= query.limit:
                break
            if skip >= open_by[severity]:
                skip -= open_by[severity]
                continue
            for line in index.read_lines(self._index_file(severity), skip=skip):
                found.append(line)
                if len(found) >= query.limit:
                    break
            skip = 0
        return total, found

    def export(self, query: index.Query) -> Iterator[dict]:
        """Every open finding matching ``query``'s filters, in index order (not paged), streamed."""
        for line in self.rows(query.wanted_severities):
            if index.matches(line, query):
                yield line

    def runs(self, limit: int) -> list[index.RunSummary]:
        """The latest ``limit`` runs' summaries, newest first."""
        runs = index.read_runs(self.store._path)
        return list(reversed(runs[-limit:])) if limit else []

    def changes(self, run_id: str) -> tuple[index.RunSummary | None, Iterator[dict]]:
        """The summary of run ``run_id`` (None when not recorded) and the rows it opened and resolved."""
        summary = next((r for r in reversed(index.read_runs(self.store._path)) if r.run_id == run_id), None)
        if summary is None:
            return None, iter(())
        path = self.store._path(f"{index.INDEX_DIR}/changes/{index.stem(summary.snapshot)}.jsonl")
        return summary, index.read_lines(path)


def run_line(summary: index.RunSummary) -> dict:
    """A run's line in ``GET /api/v1/audits/{audit}/runs``."""
    return {
        "run_id": summary.run_id,
        "time": summary.time,
        "new": summary.new,
        "open": summary.total_open,
        "resolved": summary.resolved,
        "muted": summary.muted,
        "by_severity": summary.open_by_severity(),
    }


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    """The rows as CSV text (a header, then one line per finding), a line at a time for streaming."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for line in rows:
        writer.writerow({k: _cell(v) for k, v in with_link(line).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; a text starting like a formula is prefixed with ' so a spreadsheet does not run it."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value

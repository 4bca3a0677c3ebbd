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
corrupt the state. HEAD records each snapshot's line count and sha256; a state that fails these
checks (or does not parse) is moved aside into ``damaged-<UTC time>/`` with one warning and the
run starts afresh, so a damaged state never blocks later runs. A failed update deletes its
partial files.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fnmatch
import hashlib
import logging
import os
import re
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_cloudmarker import contract
from airflow_cloudmarker import findings_index as index
from airflow_cloudmarker import records as rec
from airflow_cloudmarker.util import SEVERITIES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_cloudmarker.config import MuteRule

DEFAULT_SEVERITY = "medium"
STATUSES_OF_CHANGE = ("new", "resolved")
#: Version 3: HEAD.json records the line count and sha256 of the snapshots it names.
STATE_VERSION = 3
#: Version 2 (releases before the checksums) is read as it is and rewritten as version 3 next run.
READABLE_VERSIONS = (2, 3)
HEAD_NAME = "HEAD.json"
DAMAGED_PREFIX = "damaged-"
#: The com fields of an event kept in the state, to describe a resolved finding.
_KEPT_COM = (
    "cloud_type",
    "record_type",
    "reference",
    "description",
    "recommendation",
    "severity",
    "finding_key",
    "check_id",
    "check_ids",
    "title",
)
_KEPT_COM_SET = frozenset(_KEPT_COM)
_JSON_TYPE_NAMES = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}

log = logging.getLogger(__name__)


class DamagedState(Exception):
    """The findings state cannot be trusted: the message says which file and what is wrong.

    ``track`` answers it by moving the state aside and starting afresh; it is never an I/O error
    (those fail the task, so a retry can succeed with the state intact).
    """


@dataclass(frozen=True)
class SnapshotCheck:
    """What a snapshot must be: its number of lines (findings) and the sha256 of its bytes.

    ``sha256`` is None for a version-2 HEAD, which recorded no checksum: ``lines`` is then only
    the fewest findings its counts prove the snapshot held (new + open).
    """

    lines: int
    sha256: str | None = None

    def problem(self, actual: SnapshotCheck) -> str | None:
        """Why ``actual`` (what was read) is not this snapshot, or None when it is."""
        if self.sha256 is None:
            if actual.lines < self.lines:
                return f"has {_lines(actual.lines)}, {HEAD_NAME} counts at least {self.lines} findings"
            return None
        if actual.lines != self.lines:
            return f"has {_lines(actual.lines)}, {HEAD_NAME} recorded {self.lines}"
        if actual.sha256 != self.sha256:
            return f"has other bytes than {HEAD_NAME} recorded (sha256 {actual.sha256[:12]}, not {self.sha256[:12]})"
        return None


def _lines(count: int) -> str:
    return f"{count} line" if count == 1 else f"{count} lines"


def finding_id(event: dict) -> str:
    """A stable fingerprint of what an event found: the same problem in two runs has the same id."""
    com = event.get("com") or {}
    get = com.get
    cloud, record_type, reference, key = (
        get("cloud_type", ""),
        get("record_type", ""),
        get("reference", ""),
        get("finding_key", ""),
    )
    parts = [
        cloud if type(cloud) is str else str(cloud),
        record_type if type(record_type) is str else str(record_type),
        reference if type(reference) is str else str(reference),
        key if type(key) is str else str(key),
    ]
    if not parts[2] and not parts[3]:
        # No resource reference or detail: fall back to the event's own ext, minus run metadata.
        parts.append(rec.dumps({k: v for k, v in (event.get("ext") or {}).items() if k != "audit_version"}).decode())
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


_SEVERITY_NAMES = frozenset(SEVERITIES)


def normalize_severity(value: Any, check_id: Any = None) -> str:
    """The event's severity if it is one of SEVERITIES, else the default severity of its check.

    The check is the one ``com.check_id`` names (see ``contract.CheckMetadata``); an event of no
    known check gets ``DEFAULT_SEVERITY``.
    """
    text = str(value).lower() if value is not None else ""
    return text if text in SEVERITIES else contract.default_severity(check_id, DEFAULT_SEVERITY)


@dataclass
class Scope:
    """Which clouds and event plugins completed in this run (only their findings may resolve)."""

    failed_clouds: set[str] = field(default_factory=set)
    failed_events: set[str] = field(default_factory=set)

    def complete(self, finding: dict) -> bool:
        """True when both the cloud and the event plugin that found ``finding`` completed: it may resolve."""
        return finding.get("cloud_key") not in self.failed_clouds and finding.get("event_key") not in self.failed_events


@dataclass
class Outcome:
    """How many findings of a run are new, still open, resolved, or carried over unchanged (a failed plugin).

    ``new``, ``open`` and ``resolved`` count every finding, muted or not (muting leaves the
    lifecycle alone); ``muted`` counts the muted ones among them, by status.
    """

    new: int = 0
    open: int = 0
    resolved: int = 0
    carried: int = 0
    #: The warning line when this run found the state damaged and moved it aside, else None.
    recovered: str | None = None
    muted: dict[str, int] = field(default_factory=lambda: {"new": 0, "open": 0, "resolved": 0})


# -- mutelist ------------------------------------------------------------------------------------
_GLOB_CHARS = re.compile(r"[*?[]")


def is_glob(pattern: str) -> bool:
    """True when ``pattern`` has fnmatch wildcards (``*``, ``?``, ``[``); else it matches only itself."""
    return _GLOB_CHARS.search(pattern) is not None


def literal_segments(pattern: str) -> list[str]:
    """The ``/``-separated segments of a glob that hold no wildcard, so every match has them as segments.

    A literal segment between two ``/`` (or at the start or end of the pattern) is literal text
    of the pattern, so a reference it matches holds the same text between the same ``/``:
    ``/subscriptions/*/resourceGroups/rg-bastion/*`` gives subscriptions, resourceGroups and
    rg-bastion. ``*bastion*`` gives none.
    """
    return [segment for segment in pattern.split("/") if segment and not is_glob(segment)]


class _Rule:
    """One live rule, its conditions as sets (None: not given) and its reference globs as one regex."""

    __slots__ = ("events", "exact_references", "finding_ids", "globs", "index", "record_types", "rule")

    def __init__(self, rule: MuteRule):
        self.rule = rule
        self.index = rule.index
        self.events = frozenset(rule.events) or None
        self.record_types = frozenset(rule.record_types) or None
        self.finding_ids = frozenset(rule.finding_ids) or None
        self.exact_references = frozenset(r for r in rule.references if not is_glob(r))
        patterns = [fnmatch.translate(r) for r in rule.references if is_glob(r)]
        self.globs = re.compile("|".join(patterns)) if patterns else None

    def matches(self, fid: str, event_key: str, record_type: str, reference: str) -> bool:
        """True when every condition the rule gives matches (audits were applied when compiling)."""
        if self.finding_ids is not None and fid not in self.finding_ids:
            return False
        if self.events is not None and event_key not in self.events:
            return False
        if self.record_types is not None and record_type not in self.record_types:
            return False
        if not self.rule.references or reference in self.exact_references:
            return True
        return self.globs is not None and self.globs.match(reference) is not None


class Mutelist:
    """The ``mutelist`` rules of one audit run, compiled once to match hundreds of thousands of findings.

    A rule expired by ``today`` (after its ``expires`` day) is left out and listed in ``expired``.
    Each live rule is filed under a condition every finding it matches must meet, so a finding
    is checked against a few candidate rules only, whatever the number of rules: rules giving
    finding ids under each id, exact references under each reference, and reference globs under
    their rarest literal path segment (``rg-bastion`` of ``/subscriptions/*/resourceGroups/rg-bastion/*``),
    looked up with each segment of the finding's reference. Globs without a literal segment and
    rules without ids or references are checked for every finding. When several rules match, the
    first in config order wins.
    """

    def __init__(self, rules: Iterable[MuteRule], today: dt.date):
        self.expired: list[MuteRule] = []
        self._by_id: dict[str, list[_Rule]] = {}
        self._by_reference: dict[str, list[_Rule]] = {}
        self._by_segment: dict[str, list[_Rule]] = {}
        self._always: list[_Rule] = []  # checked for every finding: few in practice
        self.live = 0
        live = []
        for rule in sorted(rules, key=lambda r: r.index):
            if rule.expired(today):
                self.expired.append(rule)
            else:
                live.append(_Rule(rule))
        segment_counts = Counter(s for c in live for g in c.rule.references if is_glob(g) for s in literal_segments(g))
        for compiled in live:
            self._file(compiled, segment_counts)
        self._segment_keys = self._by_segment.keys()

    def _file(self, compiled: _Rule, segment_counts: Counter[str]) -> None:
        """File a live rule under the most selective condition every finding it matches must meet."""
        self.live += 1
        rule = compiled.rule
        if rule.finding_ids:
            for fid in compiled.finding_ids or ():
                self._by_id.setdefault(fid, []).append(compiled)
            return
        if not rule.references:
            self._always.append(compiled)
            return
        for reference in compiled.exact_references:
            self._by_reference.setdefault(reference, []).append(compiled)
        keys = set()
        for glob in (r for r in rule.references if is_glob(r)):
            segments = literal_segments(glob)
            if not segments:
                self._always.append(compiled)  # the rule's regex checks every glob of it, this one too
                return
            keys.add(min(segments, key=lambda s: (segment_counts[s], -len(s))))  # the rarest, longest
        for key in keys:
            self._by_segment.setdefault(key, []).append(compiled)

    def __bool__(self) -> bool:
        return self.live > 0

    def match(self, fid: str, event_key: Any, record_type: Any, reference: Any) -> MuteRule | None:
        """The first rule (in config order) that mutes this finding, or None.

        Most findings have no candidate rule at all: they cost two dict lookups and one per
        segment of their reference.
        """
        if type(reference) is not str:
            reference = "" if reference is None else str(reference)
        by_id = self._by_id.get(fid)
        by_reference = self._by_reference.get(reference)
        segments = self._segment_keys & reference.split("/") if self._segment_keys else None
        if not (by_id or by_reference or segments or self._always):
            return None
        candidates = [found for found in (by_id, by_reference, self._always) if found]
        candidates += [self._by_segment[segment] for segment in segments or ()]
        return self._first(candidates, fid, str(event_key or ""), str(record_type or ""), reference)

    @staticmethod
    def _first(candidates: list[list[_Rule]], fid: str, event_key: str, record_type: str, reference: str):
        """The matching rule of ``candidates`` (lists each in config order) that comes first in the config."""
        best: _Rule | None = None
        for rules in candidates:
            for compiled in rules:
                if best is not None and compiled.index >= best.index:
                    break  # in config order: the rest come later than the match we have
                if compiled.matches(fid, event_key, record_type, reference):
                    best = compiled
                    break
        return best.rule if best is not None else None


def mark_muted(com: dict, rule: MuteRule) -> None:
    """Stamp a finding's ``com`` as muted by ``rule``: stores keep it, alerts that are not stores skip it."""
    com["muted"] = True
    com["mute_reason"] = rule.reason
    com["mute_expires"] = rule.expires.isoformat() if rule.expires else None


def is_muted(record: dict) -> bool:
    """True when a finding was muted by a mutelist rule (``com.muted``)."""
    return (record.get("com") or {}).get("muted") is True


class SnapshotReader:
    """Streams the findings of one snapshot, checking each line and, at the end, the whole file.

    The line count and sha256 are computed while the lines stream by (the file is read once);
    after a complete read ``check`` holds them, so a HEAD written next can record them.
    """

    def __init__(self, store: StateStore, name: str | None, expected: SnapshotCheck | None = None):
        self.store = store
        self.name = name
        self.expected = expected
        self.check: SnapshotCheck | None = None
        self._read: SnapshotCheck | None = None

    #: Bytes read at a time (the digest is updated per block, not per line).
    BLOCK_BYTES = 1 << 20

    def __iter__(self) -> Iterator[dict]:
        for number, line in self._lines():
            yield self._finding(line, number)

    def _chunks(self) -> Iterator[bytes]:
        """The file a block at a time, each cut after its last newline (the last may end without one).

        After the last chunk, ``_read`` holds the number of newline-separated lines and the sha256;
        the reader finishes with ``_finish`` and the count of lines that hold findings.
        """
        self._read = None
        if not self.name:
            return
        digest = hashlib.sha256()
        count = 0
        try:
            f = self.store._path(self.name).open("rb")
        except FileNotFoundError as exc:
            raise DamagedState(f"{HEAD_NAME} names snapshot {self.name}, which is missing") from exc
        rest = b""
        with f:
            while block := f.read(self.BLOCK_BYTES):
                digest.update(block)
                data = rest + block
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    count += data.count(b"\n", 0, cut)
                    yield data[:cut]
        if rest:
            count += 1
            yield rest
        self._read = SnapshotCheck(count, digest.hexdigest())

    def _finish(self, lines: int) -> None:
        """Record what was read (``lines`` findings) and raise DamagedState unless it is what HEAD expects."""
        if self._read is None:
            return
        self.check = SnapshotCheck(lines, self._read.sha256)
        problem = self.expected.problem(self.check) if self.expected else None
        if problem:
            raise DamagedState(f"snapshot {self.name} {problem}")

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of every non-blank line; then the count and sha256 are checked."""
        count = 0
        for chunk in self._chunks():
            for line in chunk.split(b"\n"):
                if line and not line.isspace():  # a blank line was never written: the checksum fails below
                    count += 1
                    yield count, line
        self._finish(count)

    @property
    def _checksummed(self) -> bool:
        """True when the whole file's sha256 is checked at the end, so lines may be read without parsing them."""
        return self.expected is not None and self.expected.sha256 is not None

    def first_seen_by_id(self) -> dict[str, str]:
        """``first_seen`` of every finding, by id (the times interned: most findings share a few).

        Lines as this module writes them (``{"id":"...","first_seen":"...",``) are read a block at a
        time with one regular expression, without decoding the rest of them, when HEAD's sha256
        proves the file is the one written; a block with other lines, or a file without checksum,
        is parsed line by line.
        """
        found: dict[str, str] = {}
        times: dict[bytes, str] = {}
        if not self._checksummed:
            for number, line in self._lines():
                finding = self._finding(line, number)
                found[finding["id"]] = sys.intern(finding["first_seen"])
            return found
        number = 0
        for chunk in self._chunks():
            lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
            pairs = _ID_AND_FIRST_SEEN.findall(chunk)
            if len(pairs) == lines:
                for fid, first in pairs:
                    time_ = times.get(first)
                    if time_ is None:
                        time_ = times[first] = sys.intern(first.decode())
                    found[fid.decode()] = time_
            else:  # not all lines in this module's shape: parse each (and name a damaged one)
                for offset, line in enumerate(chunk.split(b"\n")[:lines], start=1):
                    if line and not line.isspace():
                        finding = self._finding(line, number + offset)
                        found[finding["id"]] = sys.intern(finding["first_seen"])
            number += lines
        # A file with the sha256 HEAD recorded has no blank line (none is ever written): every line counts.
        self._finish(self._read.lines if self._read else 0)
        return found

    def unseen(self, seen: set[str]) -> Iterator[dict]:
        """The findings whose id is not in ``seen``; a line whose id is in it is not decoded (when checksummed)."""
        quick = self._checksummed
        for number, line in self._lines():
            fid = _line_id(line) if quick else None
            if fid is not None and fid in seen:
                continue
            finding = self._finding(line, number)
            if finding["id"] not in seen:
                yield finding

    def _finding(self, line: bytes, number: int) -> dict:
        try:
            finding = rec.loads(line)
        except ValueError as exc:
            raise DamagedState(f"snapshot {self.name}: line {number} is not JSON (cut off mid-line?)") from exc
        if not (
            isinstance(finding, dict)
            and isinstance(finding.get("id"), str)
            and isinstance(finding.get("first_seen"), str)
        ):
            raise DamagedState(f"snapshot {self.name}: line {number} is not a finding (no id or first_seen)")
        return finding


_ID_PREFIX = b'{"id":"'
#: The id and first_seen at the start of a line as SnapshotWriter writes it, ending its object (not cut off).
_ID_AND_FIRST_SEEN = re.compile(rb'^\{"id":"([^"\\\n]*)","first_seen":"([^"\\\n]*)"[^\n]*\}[ \t\r]*$', re.MULTILINE)
_FIRST_SEEN = b'","first_seen":"'


def _line_id(line: bytes) -> str | None:
    """The id of a snapshot line as ``SnapshotWriter`` writes it (id first), or None for another shape.

    A line that does not end its object (cut off) is None too: parsing it says which line is damaged.
    """
    if not (line.startswith(_ID_PREFIX) and line.rstrip().endswith(b"}")):
        return None
    end = line.find(b'"', 7)
    fid = line[7:end]
    return None if end < 0 or b"\\" in fid else fid.decode()


def _id_and_first_seen(line: bytes) -> tuple[str, str] | None:
    """(id, first_seen) of a snapshot line that starts with them, or None (parse the line instead)."""
    if not (line.startswith(_ID_PREFIX) and line.rstrip().endswith(b"}")):
        return None
    end = line.find(b'"', 7)
    if end < 0 or not line.startswith(_FIRST_SEEN, end):
        return None
    start = end + len(_FIRST_SEEN)
    stop = line.find(b'"', start)
    fid, first = line[7:end], line[start:stop]
    if stop < 0 or b"\\" in fid or b"\\" in first:
        return None
    return fid.decode(), first.decode()


class SnapshotWriter:
    """Writes one finding a line, hashing the bytes as they go out (no re-read to checksum them).

    Lines are written in chunks of about ``CHUNK_BYTES``: a write through an object-storage file
    costs tens of microseconds whatever its size, more than encoding the finding.
    """

    CHUNK_BYTES = 1 << 20

    def __init__(self, name: str, file: Any):
        self.name = name
        self._file = file
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.lines = 0

    def __call__(self, finding: dict) -> None:
        """Queue ``finding`` as one line; the digest covers exactly the bytes written."""
        self.line(rec.dumps(finding) + b"\n")

    def line(self, data: bytes) -> None:
        """Queue one finding already encoded as a JSON object ending in a newline."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.lines += 1
        if self._pending_bytes >= self.CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines as one chunk."""
        if self._pending:
            chunk = b"".join(self._pending)
            self._file.write(chunk)
            self._digest.update(chunk)
            self._pending, self._pending_bytes = [], 0

    def close(self) -> None:
        """Write what is queued, then flush and close the file (again: nothing)."""
        if not self._file.closed:
            try:
                self.flush()
            finally:
                self._file.close()

    @property
    def check(self) -> SnapshotCheck:
        """Line count and sha256 of what was written, for HEAD to name so a reader can verify the file."""
        return SnapshotCheck(self.lines, self._digest.hexdigest())


class StateStore:
    """One audit's findings state under a base URL (``file://`` or an object store such as ``s3://``).

    Layout: ``<base>/<audit>/HEAD.json`` names the current snapshot (with its line count and
    sha256), the run that wrote it and the snapshot it started from; each snapshot is a JSON-lines
    file, one finding a line, written and read as a stream so memory does not grow with the number
    of findings. A snapshot is complete before HEAD points to it, and HEAD is replaced in one step
    (a rename, or one PUT). A state found damaged is moved into ``damaged-<UTC time>/`` beside it.
    """

    def __init__(self, base_url: str, audit_key: str):
        self.base_url = base_url.rstrip("/")
        self.audit_key = audit_key
        url = urlsplit(self.base_url)
        self.local_dir = os.path.join(unquote(url.path), audit_key) if url.scheme in ("file", "") else None

    @property
    def location(self) -> str:
        """The URL of this audit's state folder, as shown in messages about it."""
        return f"{self.base_url}/{self.audit_key}"

    def _path(self, name: str):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(f"{self.location}/{name}")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize updates of this audit's state.

        A file lock for local state; object stores have no lock and rely on the DAG's max_active_runs=1.
        """
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
        """The checked content of HEAD.json ({} before a first run); DamagedState when it is unusable."""
        path = self._path(HEAD_NAME)
        return parse_head(path.read_bytes()) if path.exists() else {}

    def write_head(self, head: dict) -> None:
        """Replace HEAD.json in one step, so a killed run leaves the old HEAD or the new, never half of one."""
        data = rec.dumps(head)
        if self.local_dir is None:
            self._path(HEAD_NAME).write_bytes(data)  # one PUT: atomic in object stores
            return
        final = os.path.join(self.local_dir, HEAD_NAME)
        tmp = f"{final}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            _remove_quietly(self._path(os.path.basename(tmp)))  # a full disk must not stay full
            raise
        _fsync_dir(self.local_dir)

    def read_snapshot(self, name: str | None, expected: SnapshotCheck | None = None) -> SnapshotReader:
        """Stream the findings of a snapshot (none for a first run); DamagedState when it is damaged."""
        return SnapshotReader(self, name, expected)

    @contextlib.contextmanager
    def new_snapshot(self, run_id: str) -> Iterator[SnapshotWriter]:
        """Write a snapshot line by line; yields a writer (its ``name``; call it with each finding).

        When the block raises (an exception mid-way, a full disk, the HEAD write failing), the
        snapshot is deleted: no partial file is left behind and HEAD still names the previous one.
        The block must ``close()`` the writer before a HEAD names the snapshot.
        """
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
        name = f"{safe}-{uuid.uuid4().hex[:8]}.jsonl"
        if self.local_dir is not None:
            os.makedirs(self.local_dir, exist_ok=True)
        path = self._path(name)
        try:
            writer = SnapshotWriter(name, path.open("wb"))
        except BaseException:
            _remove_quietly(path)
            raise
        try:
            yield writer
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()  # closing flushes the buffer, which may fail again: the file goes anyway
            _remove_quietly(path)
            raise
        writer.close()

    def complete(self, writer: SnapshotWriter) -> None:
        """Close a snapshot and make it durable before a HEAD names it (object stores: on close)."""
        writer.close()
        if self.local_dir is None:
            return
        fd = os.open(os.path.join(self.local_dir, writer.name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def new_index(self, run_id: str, run_time: str, snapshot_name: str) -> Iterator[index.IndexWriter]:
        """Write the UI's index of a snapshot beside it (``findings_index``); deleted when the block raises."""
        writer = index.IndexWriter(self._path, run_id, run_time, snapshot_name)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise

    def prune(self, keep: set[str | None]) -> None:
        """Delete the snapshots HEAD no longer names and the HEAD temp files of killed runs.

        Unnamed snapshots are a retried run's first try or older runs. The ``damaged-*`` folders are
        left for the user. The index of the snapshots deleted goes with them.
        """
        folder = self._path("")
        if not folder.exists():
            return
        for path in folder.iterdir():
            stale_tmp = path.name.startswith(f"{HEAD_NAME}.") and path.name.endswith(".tmp")
            if (path.name.endswith(".jsonl") and path.name not in keep) or stale_tmp:
                path.unlink(missing_ok=True)
        index.prune(self._path, keep)

    def move_aside(self) -> tuple[str, list[str]]:
        """Move HEAD.json and every snapshot into a new ``damaged-<UTC time>/`` folder beside them.

        Kept, not deleted, so the user can see what was there. Snapshots move first and HEAD last:
        if this is interrupted, what is left is still a damaged state, moved aside by the next run.
        Works through the same ObjectStoragePath as the rest of the state (a rename on local
        files; a copy and delete on object stores). Returns the folder's URL and the names moved.
        """
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{DAMAGED_PREFIX}{stamp}"
        suffix = 1
        while self._path(name).exists():
            suffix += 1
            name = f"{DAMAGED_PREFIX}{stamp}-{suffix}"
        target = self._path(name)
        target.mkdir(parents=True, exist_ok=True)
        entries = sorted(self._path("").iterdir(), key=lambda p: (p.name == HEAD_NAME, p.name))
        moved = []
        for path in entries:
            if path.name == HEAD_NAME or path.name.endswith((".jsonl", ".tmp")):
                path.move(target / path.name)
                moved.append(path.name)
        return f"{self.location}/{name}/", moved

    def current_findings(self) -> dict[str, dict]:
        """The open findings after the latest run, by id (for tools and tests; loads them all).

        Raises DamagedState when the state is damaged (the next run of the audit recovers it).
        """
        head = self.head()
        return {f["id"]: f for f in self.read_snapshot(head.get("snapshot"), expected_check(head, "snapshot"))}


def _remove_quietly(path: Any) -> None:
    """Delete a temporary file after a failure without hiding the failure itself."""
    try:
        path.unlink(missing_ok=True)
    except Exception as error:  # the original error matters more; say what is left behind
        log.warning("could not delete the temporary file %s: %s", path, error)


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (a power cut must not bring the old HEAD back).

    Best effort: some file systems cannot sync a directory, and the rename itself has succeeded.
    """
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_.-]+\.jsonl")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_head(data: bytes) -> dict:
    """HEAD.json's content, checked field by field; DamagedState says what is wrong with it."""
    try:
        head = rec.loads(data)
    except ValueError as exc:
        raise DamagedState(f"{HEAD_NAME} is not JSON ({len(data)} bytes; half-written or overwritten?)") from exc
    if not isinstance(head, dict):
        kind = "null" if head is None else _JSON_TYPE_NAMES.get(type(head), type(head).__name__)
        raise DamagedState(f"{HEAD_NAME} holds {kind}, not an object")
    version = head.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise DamagedState(f"{HEAD_NAME} has version {version!r}; this release reads {READABLE_VERSIONS}")
    if not isinstance(head.get("run_id"), (str, type(None))):
        raise DamagedState(f"{HEAD_NAME} has a run_id that is not a string")
    for which in ("snapshot", "previous"):
        name = head.get(which)
        if name is None:
            continue
        if not isinstance(name, str) or not _SNAPSHOT_NAME.fullmatch(name) or name.startswith("."):
            raise DamagedState(f"{HEAD_NAME} has {which} {name!r}, which is not a snapshot name of this folder")
        if version >= 3:
            lines, sha = head.get(f"{which}_lines"), head.get(f"{which}_sha256")
            if not (isinstance(lines, int) and lines >= 0 and isinstance(sha, str) and _SHA256.fullmatch(sha)):
                raise DamagedState(f"{HEAD_NAME} has no valid {which}_lines and {which}_sha256 for {name}")
    return head


def expected_check(head: dict, which: str) -> SnapshotCheck | None:
    """What HEAD says its ``which`` ("snapshot" or "previous") must be, as far as it says it.

    A version-2 HEAD has no checksum; its counts still prove its snapshot held new + open lines.
    """
    if not head.get(which):
        return None
    if head["version"] >= 3:
        return SnapshotCheck(head[f"{which}_lines"], head[f"{which}_sha256"])
    counts = head.get("counts")
    if which == "snapshot" and isinstance(counts, dict):
        least = sum(n for n in (counts.get("new"), counts.get("open")) if isinstance(n, int) and n > 0)
        return SnapshotCheck(least) if least else None
    return None


@dataclass
class _Baseline:
    """Where this run starts from: the snapshot it compares with and the first_seen of its findings."""

    name: str | None = None
    first_seen: dict[str, str] = field(default_factory=dict)
    check: SnapshotCheck | None = None


def _load_baseline(store: StateStore, run_id: str) -> _Baseline:
    """Read HEAD and the snapshot this run compares with, checked; DamagedState when either is damaged."""
    head = store.head()
    # A retry of this run starts from the same point as its first try did.
    which = "previous" if head.get("run_id") == run_id else "snapshot"
    reader = store.read_snapshot(head.get(which), expected_check(head, which))
    first_seen = reader.first_seen_by_id()
    return _Baseline(head.get(which), first_seen, reader.check)


def _unseen(store: StateStore, baseline: _Baseline, seen: set[str]) -> Iterator[dict]:
    """The baseline's findings this run did not see; the snapshot is not read again when it saw them all.

    The baseline's ids are known (``first_seen``) since it was read and checked before the first event.
    """
    if not baseline.name or not (baseline.first_seen.keys() - seen):
        return iter(())
    return store.read_snapshot(baseline.name, baseline.check).unseen(seen)


def _recover(store: StateStore, damage: DamagedState) -> str:
    """Move a damaged state aside and say so in one warning line; the caller starts afresh."""
    where, moved = store.move_aside()
    snapshots = sum(1 for name in moved if name.endswith(".jsonl"))
    what = [name for name in moved if name == HEAD_NAME]
    if snapshots:
        what.append(f"{snapshots} snapshot{'s' if snapshots != 1 else ''}")
    message = (
        f"findings state of audit {store.audit_key} is damaged: {damage}. Moved {' and '.join(what) or 'it'} "
        f"to {where}; this run starts a fresh state and reports every finding as new"
    )
    log.warning("%s", message)
    return message


def track(
    store: StateStore,
    run_id: str,
    run_time: str,
    events: Iterable[dict],
    scope: Scope,
    emit: Callable[[dict], None],
    mutes: Mutelist | None = None,
    emit_encoded: Callable[[bytes], None] | None = None,
) -> Outcome:
    """Annotate ``events`` (each passed to ``emit``), emit resolved events, and save the new state.

    ``run_id`` identifies the Airflow run (a retry of the same run recomputes the same statuses);
    ``run_time`` (ISO 8601) becomes ``first_seen``/``last_seen``. ``events`` must carry
    ``com.cloud_key`` (the cloud plugin key of the checked record) and ``com.origin_key`` (the
    event plugin key), which the check task stamps. Memory holds one id and one time per finding.

    A damaged state (HEAD.json unreadable, a snapshot missing, cut or not the one HEAD recorded)
    never fails the run: it is moved aside with one warning (``Outcome.recovered``) and this run
    starts from an empty state, so its findings are all ``new``. The baseline is read and checked
    completely before the first event is emitted, so no event goes out with a status from it.

    A finding (or resolved event) a rule of ``mutes`` matches is marked ``com.muted``; its id,
    status and state are what they would be unmuted.

    With ``emit_encoded``, each event of this run is encoded once, here, and goes out as its JSON
    bytes (the findings task's batch writer takes them as they are); the snapshot line is that
    same JSON behind the finding's id and times. Resolved events still go to ``emit``.
    """
    outcome = Outcome()
    match = mutes.match if mutes else None
    with store.locked():
        try:
            baseline = _load_baseline(store, run_id)
        except DamagedState as damage:
            outcome.recovered = _recover(store, damage)
            baseline = _Baseline()
        seen: set[str] = set()
        lines = _SnapshotLines(run_time)
        with store.new_snapshot(run_id) as write, store.new_index(run_id, run_time, write.name) as indexed:
            for event in events:
                com = _annotate(event, baseline, run_time, match)
                fid = com["finding_id"]
                encoded = _encoded(event) if emit_encoded is not None else None
                if fid not in seen:
                    seen.add(fid)
                    _count(outcome, com)
                    indexed.found(com)
                    line = lines.of(fid, event, com, encoded)
                    if line is not None:
                        write.line(line)
                    else:
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
                if encoded is not None:
                    emit_encoded(encoded)
                else:
                    emit(event)
            for finding in _unseen(store, baseline, seen):
                _keep_description_only(finding)
                if not scope.complete(finding):
                    write(finding)  # its cloud or check failed this run: nothing can be concluded
                    indexed.carried(finding)
                    outcome.carried += 1
                    continue
                gone = resolved_event(finding, run_time)
                _mute(gone["com"], finding.get("event_key"), match)
                _count(outcome, gone["com"])
                indexed.resolved(gone["com"])
                emit(gone)
            store.complete(write)
            indexed.close()
            store.write_head(_new_head(store, run_id, run_time, write, baseline, outcome))
        index.record_run(store._path, indexed.summary)  # after HEAD: history lists committed runs only
        store.prune({write.name, baseline.name})
    return outcome


def _annotate(event: dict, baseline: _Baseline, run_time: str, match: Callable[..., MuteRule | None] | None) -> dict:
    """Give an event of this run its finding id, severity, first/last seen, status and mute; its ``com``."""
    com = event.setdefault("com", {})
    fid = finding_id(event)
    first_seen = baseline.first_seen.get(fid)
    com["finding_id"] = fid
    severity = com.get("severity")
    if type(severity) is not str or severity not in _SEVERITY_NAMES:  # most events name a known one
        severity = normalize_severity(severity, com.get("check_id"))
    com["severity"] = severity
    known = first_seen is not None
    com["first_seen"] = first_seen if known else run_time
    com["last_seen"] = run_time
    com["status"] = "open" if known else "new"
    if match is not None:
        _mute(com, com.get("origin_key"), match)
    return com


def _encoded(event: dict) -> bytes | None:
    """The event's JSON, or None when only the batch writer's repair can encode it (it gets the dict)."""
    try:
        return rec.dumps(event)
    except rec.JSONEncodeError:
        return None


def _keep_description_only(finding: dict) -> None:
    """Drop the com fields of a finding read back that are not its description (``_KEPT_COM``).

    A line written from the event's JSON (``_SnapshotLines``) holds its whole com, with last run's
    status and mute: a resolved or carried finding must not inherit them.
    """
    com = finding.get("com")
    if isinstance(com, dict) and not com.keys() <= _KEPT_COM_SET:
        finding["com"] = {k: v for k, v in com.items() if k in _KEPT_COM_SET}


class _SnapshotLines:
    """Snapshot lines made from an event's JSON instead of a dict encoded again.

    ``{"id":...,"first_seen":...,"last_seen":...,"cloud_key":...,"event_key":...,"ext":...,"com":...}``:
    the id and first_seen come first, so the next run reads them without decoding the line
    (``_id_and_first_seen``), and the rest is the event as encoded for the alerts. Its ``com``
    holds every field of the event's, a superset of ``_KEPT_COM``; readers take what they need.
    """

    #: Only an event with no other top-level keys: another key (an ``id``, say) would clash with the line's own.
    EVENT_KEYS = frozenset(("ext", "com"))

    def __init__(self, run_time: str):
        self._last_seen = rec.dumps(run_time)
        self._first_seen: dict[str, bytes] = {}
        self._keys: dict[tuple[Any, Any], bytes] = {}

    def of(self, fid: str, event: dict, com: dict, encoded: bytes | None) -> bytes | None:
        """The line of a finding, or None when the event's JSON cannot be its tail (write the dict then)."""
        if encoded is None or not encoded.startswith(b'{"') or not event.keys() <= self.EVENT_KEYS:
            return None
        first = com["first_seen"]
        first_json = self._first_seen.get(first)
        if first_json is None:
            first_json = self._first_seen[first] = rec.dumps(first)
        key = (com.get("cloud_key"), com.get("origin_key"))
        keys_json = self._keys.get(key)
        if keys_json is None:
            keys_json = self._keys[key] = (
                b',"cloud_key":' + rec.dumps(key[0]) + b',"event_key":' + rec.dumps(key[1]) + b","
            )
        return b"".join(
            (
                b'{"id":"',
                fid.encode(),
                b'","first_seen":',
                first_json,
                b',"last_seen":',
                self._last_seen,
                keys_json,
                encoded[1:],
                b"\n",
            )
        )


def _mute(com: dict, event_key: Any, match: Callable[..., MuteRule | None] | None) -> None:
    """Mark ``com`` muted when a live rule matches it (``match`` is None without live rules: no work at all)."""
    if match is None:
        return
    rule = match(com["finding_id"], event_key, com.get("record_type"), com.get("reference"))
    if rule is not None:
        mark_muted(com, rule)


def _count(outcome: Outcome, com: dict) -> None:
    """Count one finding of this run by its status, and among the muted ones when it is muted."""
    status = com["status"]
    if status == "new":
        outcome.new += 1
    elif status == "open":
        outcome.open += 1
    else:
        outcome.resolved += 1
    if com.get("muted") is True:
        outcome.muted[status] += 1


def _new_head(
    store: StateStore, run_id: str, run_time: str, snapshot: SnapshotWriter, baseline: _Baseline, outcome: Outcome
) -> dict:
    """HEAD.json naming this run's snapshot and its baseline, each with its line count and sha256."""
    previous = baseline.check if baseline.name else None
    return {
        "version": STATE_VERSION,
        "audit_key": store.audit_key,
        "run_id": run_id,
        "updated": run_time,
        "snapshot": snapshot.name,
        "snapshot_lines": snapshot.check.lines,
        "snapshot_sha256": snapshot.check.sha256,
        "previous": baseline.name,
        "previous_lines": previous.lines if previous else None,
        "previous_sha256": previous.sha256 if previous else None,
        "counts": {"new": outcome.new, "open": outcome.open, "resolved": outcome.resolved},
    }


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

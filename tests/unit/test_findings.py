"""Findings lifecycle: ids, severity, new / open / resolved across runs, alert_on: changes."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_cloudmarker import findings


def event(reference: str, key: str, cloud_key: str = "c1", description: str = "d") -> dict:
    return {
        "ext": {"record_type": "firewall_rule_event"},
        "com": {
            "cloud_type": "azure",
            "record_type": "firewall_rule_event",
            "reference": reference,
            "finding_key": key,
            "description": description,
            "severity": "high",
            "cloud_key": cloud_key,
            "origin_key": "fw",
        },
    }


def track(store, run_id, events, scope=None):
    """Track as the findings task does: this run's events go out encoded (``emit_encoded``), resolved ones as dicts.

    (tests/unit/test_ui.py tracks with ``emit`` alone, the other way track writes its snapshot.)
    """
    out: list[dict] = []
    outcome = findings.track(
        store,
        run_id,
        f"2026-01-0{run_id[-1]}T00:00:00+00:00",
        events,
        scope or findings.Scope(),
        out.append,
        emit_encoded=lambda encoded: out.append(json.loads(encoded)),
    )
    return outcome, out


def test_finding_id_is_stable_and_changes_with_the_detail():
    assert findings.finding_id(event("r1", "22")) == findings.finding_id(event("r1", "22", description="other"))
    assert findings.finding_id(event("r1", "22")) != findings.finding_id(event("r1", "22,3389"))
    assert findings.finding_id(event("r1", "22")) != findings.finding_id(event("r2", "22"))


def test_three_runs_new_open_resolved(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    outcome, out = track(store, "run1", [event("r1", "22", description="port 22 open")])
    assert (outcome.new, outcome.open, outcome.resolved) == (1, 0, 0)
    (first,) = out
    assert first["com"]["status"] == "new" and first["com"]["first_seen"] == "2026-01-01T00:00:00+00:00"

    outcome, out = track(store, "run2", [event("r1", "22", description="port 22 open")])
    (second,) = out
    assert second["com"]["status"] == "open"
    assert second["com"]["finding_id"] == first["com"]["finding_id"]
    assert second["com"]["first_seen"] == "2026-01-01T00:00:00+00:00"
    assert second["com"]["last_seen"] == "2026-01-02T00:00:00+00:00"

    outcome, out = track(store, "run3", [])
    (resolved,) = out
    assert outcome.resolved == 1
    assert resolved["com"]["status"] == "resolved"
    assert resolved["com"]["finding_id"] == first["com"]["finding_id"]
    assert resolved["com"]["description"] == "port 22 open"
    assert resolved["com"]["resolved_at"] == "2026-01-03T00:00:00+00:00"
    assert store.current_findings() == {}
    assert [p.name for p in (tmp_path / "audit").glob("*.jsonl")] != []  # the empty snapshot of run3
    assert len(list((tmp_path / "audit").glob("*.jsonl"))) == 2  # older snapshots pruned


def test_failed_fetch_or_check_resolves_nothing(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    track(store, "run1", [event("r1", "22", cloud_key="c1"), event("r2", "22", cloud_key="c2")])
    outcome, out = track(store, "run2", [], findings.Scope(failed_clouds={"c2"}))
    assert outcome.resolved == 1 and outcome.carried == 1
    assert [e["com"]["reference"] for e in out] == ["r1"]
    outcome, out = track(store, "run3", [], findings.Scope(failed_events={"fw"}))
    assert (outcome.resolved, outcome.carried, out) == (0, 1, [])


def test_a_retried_run_computes_the_same_statuses(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    track(store, "run1", [event("r1", "22")])
    _, first_try = track(store, "run2", [event("r2", "22")])
    _, second_try = track(store, "run2", [event("r2", "22")])
    assert [e["com"]["status"] for e in first_try] == [e["com"]["status"] for e in second_try] == ["new", "resolved"]


def _concurrent_run(args):
    base, run_id = args
    store = findings.StateStore(base, "audit")
    outcome, _ = track(store, run_id, [event("shared", "22"), event(f"own-{run_id}", "22")])
    return outcome.new


def test_concurrent_runs_cannot_corrupt_the_state(tmp_path):
    base = f"file://{tmp_path}"
    # spawn, not fork: forking a process that runs Airflow's threads can deadlock the child.
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        news = pool.map_async(_concurrent_run, [(base, f"run{i}") for i in range(1, 9)]).get(timeout=300)
    # Serialized updates: the shared finding is new exactly once; each run's own finding is new.
    assert sum(news) == 8 + 1
    assert len(findings.StateStore(base, "audit").current_findings()) == 2  # the last run's shared + own


# -- a damaged state never blocks later runs ----------------------------------------------------


def three_events() -> list[dict]:
    return [event(f"r{i}", "22", description=f"port 22 open on r{i}") for i in range(3)]


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def cut_mid_line(folder: Path) -> str:
    snapshot = only(folder, "*.jsonl")
    snapshot.write_bytes(snapshot.read_bytes()[:-25])
    return snapshot.name


def cut_at_line_boundary(folder: Path) -> str:
    snapshot = only(folder, "*.jsonl")
    snapshot.write_bytes(snapshot.read_bytes().splitlines(keepends=True)[0])
    return snapshot.name


def cut_to_zero_bytes(folder: Path) -> str:
    snapshot = only(folder, "*.jsonl")
    snapshot.write_bytes(b"")
    return snapshot.name


def snapshot_missing(folder: Path) -> str:
    snapshot = only(folder, "*.jsonl")
    snapshot.unlink()
    return snapshot.name


def head_replaced(data: bytes) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        (folder / "HEAD.json").write_bytes(data)
        return "HEAD.json"

    return damage


def head_half_written(folder: Path) -> str:
    head = folder / "HEAD.json"
    head.write_bytes(head.read_bytes()[: len(head.read_bytes()) // 2])
    return "HEAD.json"


def head_names_a_file_outside(folder: Path) -> str:
    head = folder / "HEAD.json"
    head.write_bytes(head.read_bytes().replace(b'"snapshot":"', b'"snapshot":"../../'))
    return "HEAD.json"


DAMAGES = {
    "snapshot cut mid-line": (cut_mid_line, "line 3"),
    "snapshot cut at a line boundary": (cut_at_line_boundary, "1 line"),
    "snapshot cut to 0 bytes": (cut_to_zero_bytes, "0 lines"),
    "snapshot missing": (snapshot_missing, "missing"),
    "HEAD garbage": (head_replaced(b"\x00\x17garbage{"), "not JSON"),
    "HEAD empty": (head_replaced(b""), "not JSON"),
    "HEAD half-written": (head_half_written, "not JSON"),
    "HEAD is []": (head_replaced(b"[]"), "a list"),
    "HEAD is null": (head_replaced(b"null"), "null"),
    "HEAD is a string": (head_replaced(b'"HEAD"'), "a string"),
    "HEAD names a file outside": (head_names_a_file_outside, "not a snapshot name"),
}


class Warnings(logging.Handler):
    """The warning lines the findings module logs (a handler on its own logger: Airflow's logging
    set-up, done at its first import, replaces the root handlers that caplog relies on)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings():
    handler = Warnings()
    logger = logging.getLogger("airflow_cloudmarker.findings")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.parametrize("case", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_state_is_moved_aside_and_the_run_starts_fresh(tmp_path, warnings, case):
    damage, reason = DAMAGES[case]
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    folder = tmp_path / "audit"
    track(store, "run1", three_events())
    damaged_name = damage(folder)
    damaged_bytes = (folder / damaged_name).read_bytes() if (folder / damaged_name).exists() else None

    outcome, out = track(store, "run2", three_events())

    # This run's events all come out (fresh state: every finding is new, none resolved).
    assert [e["com"]["status"] for e in out] == ["new"] * 3
    assert (outcome.new, outcome.open, outcome.resolved) == (3, 0, 0)
    # One warning line: what was wrong, in which file, and where the state went.
    (warning,) = warnings.lines
    assert "\n" not in warning
    (aside,) = folder.glob("damaged-*")
    assert damaged_name in warning and reason in warning and f"{store.location}/{aside.name}/" in warning
    assert outcome.recovered == warning
    # The damaged state is kept as it was found, not deleted.
    if damaged_bytes is not None:
        assert (aside / damaged_name).read_bytes() == damaged_bytes
    assert (aside / "HEAD.json").exists()

    warnings.lines.clear()
    outcome, out = track(store, "run3", three_events())
    assert [e["com"]["status"] for e in out] == ["open"] * 3  # the fresh state is healthy
    assert warnings.lines == []
    assert outcome.recovered is None
    assert (aside / "HEAD.json").exists()  # later runs leave the damaged folder alone


def test_head_records_the_line_count_and_checksum_of_its_snapshots(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    track(store, "run1", three_events())
    track(store, "run2", three_events()[:2])
    head = json.loads((tmp_path / "audit" / "HEAD.json").read_bytes())
    assert head["version"] == 3
    for which, lines in (("snapshot", 2), ("previous", 3)):
        data = (tmp_path / "audit" / head[which]).read_bytes()
        assert head[f"{which}_lines"] == lines == len(data.splitlines())
        assert head[f"{which}_sha256"] == hashlib.sha256(data).hexdigest()


# What today's release (HEAD version 2: no line count, no checksum) leaves in a user's state folder.
OLD_HEAD = (
    b'{"version":2,"audit_key":"audit","run_id":"run1","updated":"2026-01-01T00:00:00+00:00",'
    b'"snapshot":"run1-7d043474.jsonl","previous":null,"counts":{"new":2,"open":0,"resolved":0}}'
)


def old_state(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "HEAD.json").write_bytes(OLD_HEAD)
    lines = [
        {
            "id": findings.finding_id(e),
            "first_seen": "2026-01-01T00:00:00+00:00",
            "last_seen": "2026-01-01T00:00:00+00:00",
            "cloud_key": "c1",
            "event_key": "fw",
            "ext": e["ext"],
            "com": {"reference": e["com"]["reference"]},
        }
        for e in three_events()[:2]
    ]
    (folder / "run1-7d043474.jsonl").write_bytes(b"".join(json.dumps(f).encode() + b"\n" for f in lines))


def test_an_old_head_without_checksum_is_read_and_upgraded(tmp_path, warnings):
    old_state(tmp_path / "audit")
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    _, out = track(store, "run2", three_events())
    assert [e["com"]["status"] for e in out] == ["open", "open", "new"]
    assert warnings.lines == []
    head = json.loads((tmp_path / "audit" / "HEAD.json").read_bytes())
    assert head["version"] == 3 and head["previous"] == "run1-7d043474.jsonl" and head["previous_lines"] == 2
    assert head["snapshot_lines"] == 3


def test_an_old_head_whose_snapshot_lost_findings_is_damaged(tmp_path):
    """A version-2 HEAD has no checksum, but its counts say how many findings its snapshot holds at least."""
    old_state(tmp_path / "audit")
    (tmp_path / "audit" / "run1-7d043474.jsonl").write_bytes(b"")
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    outcome, out = track(store, "run2", three_events())
    assert [e["com"]["status"] for e in out] == ["new"] * 3
    assert "0 lines" in outcome.recovered and "run1-7d043474.jsonl" in outcome.recovered


def test_a_retry_after_a_recovery_computes_the_same_statuses(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    track(store, "run1", three_events())
    cut_mid_line(tmp_path / "audit")
    _, first_try = track(store, "run2", three_events())
    _, second_try = track(store, "run2", three_events())
    assert [e["com"]["status"] for e in first_try] == [e["com"]["status"] for e in second_try] == ["new"] * 3


@pytest.fixture
def memory_store():
    """A findings state on an fsspec object store (the in-memory one, attached as Airflow attaches S3)."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    base = f"memory://bucket/{uuid.uuid4().hex}"
    yield findings.StateStore(base, "audit")
    MemoryFileSystem().rm(base.removeprefix("memory://"), recursive=True)


def test_a_damaged_state_on_object_storage_is_moved_aside(memory_store):
    from airflow.sdk import ObjectStoragePath

    track(memory_store, "run1", three_events())
    folder = ObjectStoragePath(memory_store.location)
    (snapshot,) = [p for p in folder.iterdir() if p.name.endswith(".jsonl")]
    snapshot.write_bytes(snapshot.read_bytes()[:-25])

    outcome, out = track(memory_store, "run2", three_events())
    assert [e["com"]["status"] for e in out] == ["new"] * 3
    (aside,) = [p for p in folder.iterdir() if p.name.startswith("damaged-")]
    assert sorted(p.name for p in aside.iterdir()) == sorted(["HEAD.json", snapshot.name])
    assert snapshot.name in outcome.recovered and f"{memory_store.location}/{aside.name}/" in outcome.recovered
    _, out = track(memory_store, "run3", three_events())
    assert [e["com"]["status"] for e in out] == ["open"] * 3


# -- a failure mid-way leaves no partial file, and HEAD names the previous good snapshot ---------

# Runs one findings update in a process whose file-size limit (RLIMIT_FSIZE) makes the kernel fail
# a write half-way with EFBIG, as a full disk fails it with ENOSPC.
_LIMITED_RUN = """
import resource, signal, sys
from airflow_cloudmarker import findings
base, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = findings.StateStore(base, "audit")
com = {"cloud_type": "azure", "record_type": "e", "finding_key": "22", "description": "x" * 200, "origin_key": "fw"}
events = [{"ext": {}, "com": {**com, "reference": f"r{i}", "cloud_key": "c1"}} for i in range(count)]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
findings.track(store, "run2", "2026-01-02T00:00:00+00:00", events, findings.Scope(), lambda e: None)
"""


def files_under(folder):
    """Every file of the state folder (its index too) and its bytes, by path relative to the folder."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize(
    ("count", "limit"),
    [(2000, 64 * 1024), (0, 100)],
    ids=["the snapshot write fails", "the HEAD write fails"],
)
def test_a_failed_write_leaves_no_partial_file_behind(tmp_path, count, limit):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    folder = tmp_path / "audit"
    track(store, "run1", three_events())
    before = files_under(folder)

    child = subprocess.run(
        [sys.executable, "-c", _LIMITED_RUN, store.base_url, str(count), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode != 0 and "File too large" in child.stderr, child.stderr[-2000:]

    assert files_under(folder) == before  # HEAD still names run1's snapshot; no index of the failed try
    _, out = track(store, "run2", three_events())
    assert [e["com"]["status"] for e in out] == ["open"] * 3


def test_an_exception_mid_way_leaves_no_partial_file_behind(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    folder = tmp_path / "audit"
    track(store, "run1", three_events())
    before = files_under(folder)

    def events_then_disk_full():
        yield from three_events()
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        track(store, "run2", events_then_disk_full())
    assert files_under(folder) == before


def test_finding_ids_stay_what_earlier_releases_computed():
    """Ids are kept in the state across releases: a faster finding_id must give the same ids."""
    com = {"cloud_type": "azure", "record_type": "firewall_rule", "reference": "/subscriptions/s1/nsg/r1"}
    assert findings.finding_id({"com": {**com, "finding_key": "22"}}) == "679c799aefe9d5920888139d1d094912"
    # values that are not strings are hashed as their str(), None included
    odd = {"cloud_type": "mock", "record_type": "mock_event", "reference": 3, "finding_key": None}
    assert findings.finding_id({"com": odd}) == "47a07e90df79a126c4b1f41cffd3d0c2"


def test_a_finding_read_back_keeps_its_description_not_last_runs_status_or_mute(tmp_path):
    """Snapshot lines hold the whole encoded event; resolved and carried findings take only its description."""
    import datetime as dt

    from airflow_cloudmarker.config import MuteRule

    store = findings.StateStore(f"file://{tmp_path}", "a")
    mutes = findings.Mutelist([MuteRule(0, "accepted", "test.yaml", references=("r1", "r2"))], dt.date(2026, 1, 1))
    out: list[dict] = []
    findings.track(
        store,
        "run1",
        "2026-01-01T00:00:00+00:00",
        [event("r1", "22"), event("r2", "22", cloud_key="c2")],
        findings.Scope(),
        out.append,
        mutes,
        emit_encoded=lambda encoded: out.append(json.loads(encoded)),
    )
    assert [e["com"]["muted"] for e in out] == [True, True]
    snapshot = (tmp_path / "a" / json.loads((tmp_path / "a" / "HEAD.json").read_text())["snapshot"]).read_bytes()
    first = json.loads(snapshot.splitlines()[0])
    assert list(first)[:5] == ["id", "first_seen", "last_seen", "cloud_key", "event_key"]
    assert first["com"]["muted"] is True and first["com"]["description"] == "d"

    # No rules now: r1 is gone (resolved), r2's cloud failed (carried over); neither may come back muted.
    _, out = track(store, "run2", [], findings.Scope(failed_clouds={"c2"}))
    (resolved,) = out
    assert resolved["com"]["status"] == "resolved" and resolved["com"]["reference"] == "r1"
    assert "muted" not in resolved["com"] and "mute_reason" not in resolved["com"]
    assert resolved["com"]["description"] == "d" and resolved["com"]["severity"] == "high"
    carried = store.current_findings()
    assert list(carried) and all("muted" not in f["com"] and "status" not in f["com"] for f in carried.values())

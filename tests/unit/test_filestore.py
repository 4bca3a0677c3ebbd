"""FileStore: its directory exists from construction, and no temporary file outlives a failure.

The failures are real: a record the JSON encoder refuses, a file size limit that makes the kernel
refuse a write (EFBIG, as a full disk refuses it with ENOSPC), a directory where the output file
should go, a process killed with SIGKILL. Plugin-level tests, without Airflow; one run of the
``cloudmarker`` command as a new user (tests/integration/test_filestore.py) shows what the user sees.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from airflow_cloudmarker.stores.filestore import FileStore


def record(worker: str, n: int, **raw) -> dict:
    return {"raw": {"n": n, **raw}, "ext": {}, "com": {"origin_worker": worker, "record_type": "mock"}}


def temp_files(path) -> list[str]:
    return sorted(name for name in os.listdir(path) if name.endswith(".tmp"))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def previous_run(path, worker: str = "a") -> bytes:
    """A complete output file from an earlier run, which a failed run must leave as it was."""
    store = FileStore(str(path))
    store.write(record(worker, 0))
    store.done()
    return (path / f"{worker}.json").read_bytes()


def run_python(code: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, check=False
    )


# --- the directory ---------------------------------------------------------------------------


def test_constructor_creates_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    FileStore("~/cloudmarker/out").done()  # an audit that produced nothing
    assert (tmp_path / "cloudmarker" / "out").is_dir()
    assert os.listdir(tmp_path / "cloudmarker" / "out") == []


def test_directory_that_cannot_be_created_names_the_param(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OSError, match=r"FileStore param path '.*file/out': cannot create directory .*can write"):
        FileStore(str(tmp_path / "file" / "out"))


# --- writing ---------------------------------------------------------------------------------


def test_one_array_per_worker_and_no_temp_file_after_done(tmp_path):
    store = FileStore(str(tmp_path))
    for n in range(3):
        store.write(record("a", n))
        store.write(record("b", n))
    assert len(temp_files(tmp_path)) == 2  # nothing final before done()
    store.done()
    assert [r["raw"]["n"] for r in read_json(tmp_path / "a.json")] == [0, 1, 2]
    assert [r["raw"]["n"] for r in read_json(tmp_path / "b.json")] == [0, 1, 2]
    assert temp_files(tmp_path) == []


def test_a_batch_writes_the_same_bytes_as_its_records_one_by_one(tmp_path):
    records = [record("a", 0), record("b", 1, tags={"x", "y"}), record("a", 2), {"raw": {}, "com": {}}]
    one_by_one, batched = FileStore(str(tmp_path / "one")), FileStore(str(tmp_path / "batch"))
    for r in records[:2]:
        one_by_one.write(r)
    batched.write_batch(records[:2])
    for r in records[2:]:
        one_by_one.write(r)
    batched.write_batch(records[2:])
    one_by_one.done()
    batched.done()
    names = sorted(os.listdir(tmp_path / "one"))
    assert names == ["a.json", "b.json", "records.json"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "batch" / name).read_bytes()
    assert read_json(tmp_path / "batch" / "b.json")[0]["raw"]["tags"] == ["x", "y"]  # a set, as write() encodes it


def test_a_batch_with_a_record_that_cannot_be_encoded_writes_none_of_it(tmp_path):
    store = FileStore(str(tmp_path))
    store.write_batch([record("a", 0)])
    with pytest.raises(TypeError):
        store.write_batch([record("a", 1), record("a", 2, big=2**64)])
    store.write_batch([record("a", 3)])
    store.done()
    assert [r["raw"]["n"] for r in read_json(tmp_path / "a.json")] == [0, 3]


def test_record_that_cannot_be_encoded_leaves_the_array_valid(tmp_path):
    store = FileStore(str(tmp_path))
    store.write(record("a", 0))
    with pytest.raises(TypeError):
        store.write(record("a", 1, big=2**64))  # beyond what the JSON encoder carries
    store.write(record("a", 2))
    store.done()
    assert [r["raw"]["n"] for r in read_json(tmp_path / "a.json")] == [0, 2]


def test_abort_after_a_failure_removes_temp_files_and_keeps_the_previous_file(tmp_path):
    before = previous_run(tmp_path)
    store = FileStore(str(tmp_path))
    store.write(record("a", 1))
    store.write(record("b", 1))
    with pytest.raises(TypeError):
        store.write(record("a", 2, big=2**64))
    store.abort()  # what the framework does when the store task fails
    assert temp_files(tmp_path) == []
    assert (tmp_path / "a.json").read_bytes() == before
    assert not (tmp_path / "b.json").exists()
    store.abort()  # twice is harmless
    store.done()  # nothing left to finish
    assert (tmp_path / "a.json").read_bytes() == before


def test_failing_file_write_removes_every_temp_file(tmp_path):
    """The kernel refuses writes past RLIMIT_FSIZE (EFBIG) as a full disk refuses them (ENOSPC)."""
    before = previous_run(tmp_path)
    result = run_python(
        f"""
        import json, os, resource, signal
        from airflow_cloudmarker.stores.filestore import FileStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get the error, not the signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        store = FileStore({str(tmp_path)!r})
        store.write({{"com": {{"origin_worker": "b"}}, "raw": "x"}})
        try:
            for n in range(100):
                store.write({{"com": {{"origin_worker": "a"}}, "raw": "x" * 500_000, "n": n}})
        except OSError as exc:
            print(json.dumps({{"n": n, "error": exc.strerror, "left": sorted(os.listdir({str(tmp_path)!r}))}}))
        """
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["error"] == "File too large" and 0 < seen["n"] < 100
    assert seen["left"] == ["a.json"]  # deleted by write() itself, not at exit
    assert (tmp_path / "a.json").read_bytes() == before


def test_failing_done_removes_the_temp_files_left(tmp_path):
    (tmp_path / "b.json").mkdir()  # b's output cannot take its place
    store = FileStore(str(tmp_path))
    store.write(record("a", 1))
    store.write(record("b", 1))
    with pytest.raises(IsADirectoryError):
        store.done()
    assert temp_files(tmp_path) == []
    assert [r["raw"]["n"] for r in read_json(tmp_path / "a.json")] == [1]  # finished before b failed: complete


# --- abandoned and killed stores ---------------------------------------------------------------


def test_store_dropped_before_done_deletes_its_temp_files(tmp_path):
    before = previous_run(tmp_path)
    store = FileStore(str(tmp_path))
    store.write(record("a", 1))
    assert len(temp_files(tmp_path)) == 1
    del store
    gc.collect()
    assert temp_files(tmp_path) == []
    assert (tmp_path / "a.json").read_bytes() == before


def test_process_exiting_before_done_deletes_its_temp_files(tmp_path):
    result = run_python(
        f"""
        import sys
        from airflow_cloudmarker.stores.filestore import FileStore
        store = FileStore({str(tmp_path)!r})
        store.write({{"com": {{"origin_worker": "a"}}}})
        sys.exit(3)  # interrupted: done() never comes, the store is still referenced
        """
    )
    assert result.returncode == 3, result.stderr
    assert os.listdir(tmp_path) == []


def test_next_store_deletes_temp_files_of_a_killed_process_only(tmp_path):
    writer = """
        import sys, time
        from airflow_cloudmarker.stores.filestore import FileStore
        store = FileStore(sys.argv[1])
        store.write({"com": {"origin_worker": sys.argv[2]}})
        print("ready", flush=True)
        time.sleep(120)
    """
    procs = {
        worker: subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(writer), str(tmp_path), worker], stdout=subprocess.PIPE, text=True
        )
        for worker in ("killed", "alive")
    }
    try:
        for proc in procs.values():
            assert proc.stdout.readline() == "ready\n"
        procs["killed"].send_signal(signal.SIGKILL)
        procs["killed"].wait(timeout=30)
        other_host = tmp_path / f".x.json.some-other-host-{procs['killed'].pid}.tmp"
        other_host.write_text("[")  # a writer on another host sharing the directory
        assert len(temp_files(tmp_path)) == 3
        FileStore(str(tmp_path))
        left = temp_files(tmp_path)
        assert len(left) == 2 and left[0].startswith(".alive.json.") and other_host.name in left
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(timeout=30)

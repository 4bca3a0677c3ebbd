"""Record batches as files beside the run's XCom files, with only the manifest an XCom."""

from __future__ import annotations

import json

import pytest

from airflow_cloudmarker import batches

BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
STAMP = {"audit_key": "a", "origin_key": "mockcloud"}


class RuntimeTI:
    """What batches reads of Airflow's runtime task instance; XComs in a dict."""

    def __init__(self, task_id="fetch_x", try_number=1, map_index=-1):
        self.dag_id, self.run_id, self.task_id = "audit", "manual__1", task_id
        self.try_number, self.map_index = try_number, map_index
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        return self.pushed.get(key)


@pytest.fixture
def object_store(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__XCOM_BACKEND", BACKEND)
    monkeypatch.setenv("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", f"file://{tmp_path}/xcom")
    return tmp_path / "xcom"


TWO_A_BATCH = batches.BatchLimits(records=2)


def write(ti, records):
    writer = batches.BatchWriter(ti, TWO_A_BATCH, stamp=STAMP)
    for record in records:
        writer.add(record)
    return writer.manifest()


def test_batches_are_files_in_the_tries_folder_and_only_the_manifest_names_them(object_store):
    ti = RuntimeTI(map_index=3)
    manifest = write(ti, [{"raw": {"n": n}, "com": {}} for n in range(5)])
    folder = object_store / "audit" / "manual__1" / "fetch_x" / "cloudmarker-batches-3-try1"
    assert manifest["folder"] == f"file://{folder}" and manifest["batches"] == 3
    assert ti.pushed == {}  # no batch went through the XCom API
    assert sorted(p.name for p in folder.iterdir()) == ["batch_00000.json", "batch_00001.json", "batch_00002.json"]
    first = json.loads((folder / "batch_00000.json").read_bytes())
    records = [{"raw": {"n": 0}, "com": {}}, {"raw": {"n": 1}, "com": {}}]
    assert first == {"count": 2, "stamp": STAMP, "records": records}

    read = [r for batch in batches.read_batches(ti, [manifest], extra={"target_key": "s"}) for r in batch]
    assert [r["raw"]["n"] for r in read] == [0, 1, 2, 3, 4]
    assert read[4]["com"] == {**STAMP, "target_key": "s"}


def test_a_retry_writes_its_own_folder_and_its_consumers_read_it_once(object_store):
    failed = write(RuntimeTI(try_number=1), [{"raw": {"n": n}} for n in range(3)])
    retried = write(RuntimeTI(try_number=2), [{"raw": {"n": n}} for n in range(10, 13)])
    assert failed["folder"] != retried["folder"]
    read = [r["raw"]["n"] for batch in batches.read_batches(RuntimeTI(), [retried]) for r in batch]
    assert read == [10, 11, 12]


def test_a_same_try_run_again_replaces_what_the_first_left(object_store):
    write(RuntimeTI(), [{"raw": {"n": n}} for n in range(5)])  # 3 files
    again = write(RuntimeTI(), [{"raw": {"n": 9}}])
    folder = object_store / "audit" / "manual__1" / "fetch_x" / "cloudmarker-batches--1-try1"
    assert [p.name for p in folder.iterdir()] == ["batch_00000.json"] and again["batches"] == 1


def test_a_missing_batch_file_names_the_file_and_the_fix(object_store):
    manifest = write(RuntimeTI(), [{"raw": {}}])
    (object_store / "audit" / "manual__1" / "fetch_x" / "cloudmarker-batches--1-try1" / "batch_00000.json").unlink()
    with pytest.raises(RuntimeError, match=r"batch_00000.json of fetch_x\[-1\] is missing.*rerun the upstream task"):
        list(batches.read_batches(RuntimeTI(), [manifest]))


def test_without_the_object_storage_backend_batches_stay_xcom_values(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__XCOM_BACKEND", "airflow.sdk.bases.xcom.BaseXCom")
    monkeypatch.setenv("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", f"file://{tmp_path}/xcom")
    ti = RuntimeTI()
    manifest = write(ti, [{"raw": {"n": 1}}])
    assert "folder" not in manifest and list(ti.pushed) == ["batch_00000"]
    assert [r["raw"]["n"] for b in batches.read_batches(ti, [manifest]) for r in b] == [1]
    assert not (tmp_path / "xcom").exists()

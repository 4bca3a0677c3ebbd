"""A batch carries its records' common com fields once (``stamp``); readers put them back into each record."""

from __future__ import annotations

from airflow_cloudmarker import batches
from airflow_cloudmarker import records as rec

STAMP = {"audit_key": "a", "audit_version": "v", "origin_key": "mockcloud", "origin_type": "cloud"}


class MemoryXCom:
    """Airflow's runtime task instance as the XComAccess protocol sees it, keeping XComs in a dict."""

    task_id = "fetch_x"
    map_index = -1

    def __init__(self):
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        return self.pushed.get(key)


def test_the_stamp_is_written_once_per_batch_and_not_in_the_records():
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti, stamp=STAMP)
    writer.add({"raw": {"data": 1}, "com": {"cloud_type": "mock"}})
    manifest = writer.manifest()
    value = ti.pushed["batch_00000"]
    assert value["stamp"] == STAMP
    assert rec.loads(value["records"]) == [{"raw": {"data": 1}, "com": {"cloud_type": "mock"}}]
    assert manifest["batches"] == 1


def test_readers_get_records_stamped_as_before_in_the_same_key_order():
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti, stamp=STAMP)
    records = [
        {"raw": {"data": 1}, "com": {"cloud_type": "mock", "audit_key": "mine"}},  # the stamp wins, as before
        {"raw": {"data": 2}},  # no com: it gets one
    ]
    for record in records:
        writer.add(record)
    manifest = writer.manifest()
    target = {"target_key": "filestore", "target_type": "store"}
    (batch,) = batches.read_batches(ti, [manifest], extra=target)
    expected = [rec.stamp(rec.stamp(dict(r, com=dict(r.get("com") or {})), STAMP), target) for r in records]
    assert batch == expected
    assert [list(r["com"]) for r in batch] == [list(r["com"]) for r in expected]
    (unstamped,) = batches.read_unstamped(ti, [manifest])
    assert unstamped == (records, STAMP)


def test_a_new_stamp_starts_a_new_batch():
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti, stamp=STAMP)
    writer.add({"raw": 1})
    writer.set_stamp({**STAMP, "cloud_key": "other"})
    writer.add({"raw": 2})
    writer.set_stamp({**STAMP, "cloud_key": "other"})  # the same stamp: the batch goes on
    writer.add({"raw": 3})
    manifest = writer.manifest()
    assert manifest["batches"] == 2 and manifest["records"] == 3
    read = [(r["raw"], r["com"].get("cloud_key")) for batch in batches.read_batches(ti, [manifest]) for r in batch]
    assert read == [(1, None), (2, "other"), (3, "other")]


def test_the_byte_limit_counts_each_record_with_its_stamp():
    record = {"raw": {"data": 1}}
    size = len(rec.dumps(record)) + 1
    stamped = size + len(rec.dumps(STAMP))
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti, batches.BatchLimits(records=1000, bytes=stamped * 3), stamp=STAMP)
    for _ in range(6):
        writer.add(dict(record))
    assert writer.manifest()["batches"] == 2  # 3 stamped records a batch; unstamped, 6 would fit in one


def test_a_batch_without_stamp_reads_as_it_was_written():
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti)
    writer.add({"raw": 1, "com": {"x": 1}})
    manifest = writer.manifest()
    assert "stamp" not in ti.pushed["batch_00000"]
    assert list(batches.read_batches(ti, [manifest])) == [[{"raw": 1, "com": {"x": 1}}]]

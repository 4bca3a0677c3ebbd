"""MockCloud, MockEvent, FileStore and the plugin helpers, without Airflow."""

from __future__ import annotations

import json
import os

import pytest

from airflow_cloudmarker import plugins, records, util
from airflow_cloudmarker.clouds.mockcloud import MockCloud
from airflow_cloudmarker.events.mockevent import MockEvent
from airflow_cloudmarker.stores.filestore import FileStore


def test_mockcloud_defaults():
    out = list(MockCloud().read())
    assert len(out) == 10
    assert [r["raw"]["data"] for r in out] == list(range(10))
    assert [r["ext"]["record_type"] for r in out[:4]] == ["foo", "bar", "foo", "bar"]
    assert {r["com"]["record_type"] for r in out} == {"mock"}


def test_mockevent_multiples_of_n():
    events = [e for r in MockCloud(record_count=10).read() for e in MockEvent().eval(r)]
    assert [e["ext"]["data"] for e in events] == [0, 3, 6, 9]
    assert events[1]["com"]["description"] == "3 is a multiple of 3."
    assert events[1]["ext"]["record_type"] == "mock_event"
    assert list(MockEvent(n=5).eval({"raw": {"data": 10}}))[0]["ext"]["n"] == 5
    assert list(MockEvent().eval({})) == []  # no raw.data counts as 1


def test_filestore_one_array_per_origin_worker_written_atomically(tmp_path):
    store = FileStore(path=str(tmp_path / "out"))
    for i in range(3):
        store.write({"raw": {"i": i}, "com": {"origin_worker": "a_x"}})
    store.write({"raw": {}, "com": {"origin_worker": "a_y"}})
    assert not (tmp_path / "out" / "a_x.json").exists()  # not visible before done()
    store.done()
    assert [r["raw"]["i"] for r in json.loads((tmp_path / "out" / "a_x.json").read_text())] == [0, 1, 2]
    assert len(json.loads((tmp_path / "out" / "a_y.json").read_text())) == 1
    assert [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")] == []


def test_filestore_expands_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = FileStore(path="~/cloudmarker")
    store.write({"com": {"origin_worker": "w"}})
    store.done()
    assert (tmp_path / "cloudmarker" / "w.json").exists()


def test_records_encode_datetimes_and_sdk_values_as_json():
    import datetime as dt

    value = {"t": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC), "s": {3, 1}, "b": b"hi", "o": object()}
    out = records.jsonable(value)
    assert out["t"] == "2024-05-01T12:00:00+00:00"
    assert out["s"] == [1, 3]
    assert out["b"] == "aGk="
    assert out["o"].startswith("<object object")


def test_merge_dicts_and_port_ranges():
    a = {"x": {"y": 1, "z": [1]}, "k": 1}
    b = {"x": {"z": [2]}, "n": 2}
    assert util.merge_dicts(a, b) == {"x": {"y": 1, "z": [2]}, "k": 1, "n": 2}
    assert a == {"x": {"y": 1, "z": [1]}, "k": 1}
    assert util.expand_port_ranges(["22", 80, "1000-1002"]) == {22, 80, 1000, 1001, 1002}
    assert len(util.expand_port_ranges(["*"])) == 65536
    assert util.expand_port_ranges(["9-1", "22"]) == {22}  # a reversed range is skipped, with a warning


def test_legacy_paths_load_this_package():
    assert plugins.load_class("cloudmarker.clouds.mockcloud.MockCloud") is MockCloud
    assert plugins.load_class("airflow_cloudmarker.clouds.mockcloud.MockCloud") is MockCloud
    with pytest.raises(plugins.PluginError, match="accepted params: record_count, record_types"):
        plugins.check_params(MockCloud, {"bogus": 1})

"""MockCloud, MockEvent, FileStore and the plugin helpers, without Airflow."""

from __future__ import annotations

import json
import os
import typing

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
    assert events[1]["com"]["recommendation"] == "Divide 3 by 3 and confirm that the remainder is 0."
    assert (events[1]["com"]["check_id"], events[1]["com"]["severity"]) == ("mock_multiple_of_n", "low")
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


class _Annotated:
    """A plugin whose constructor annotates its params the ways plugin authors do (string annotations here)."""

    def __init__(
        self,
        count: int = 1,
        ratio: float = 0.5,
        flag: bool = False,
        name: str | None = None,
        names: list[str] | None = None,
        mapping: dict[str, int] | None = None,
        pair: tuple[int, str] = (1, "a"),
        loose=None,
        anything: typing.Any = None,
        unknown: NameOnlyForTypeCheckers = None,  # noqa: F821 - cannot be resolved: not checked
    ):
        pass


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"count": "5"}, "_Annotated param count must be int, not '5' (a string); write it without quotes: count: 5"),
        (
            {"count": True},
            "_Annotated param count must be int, not True (true/false); set count to a value of type int",
        ),
        ({"count": 2.5}, "_Annotated param count must be int, not 2.5 (a number)"),
        (
            {"ratio": "x"},
            "_Annotated param ratio must be float, not 'x' (a string); set ratio to a value of type float",
        ),
        (
            {"flag": "true"},
            "_Annotated param flag must be bool, not 'true' (a string); write it without quotes: flag: true",
        ),
        ({"flag": 1}, "_Annotated param flag must be bool, not 1 (an integer)"),
        ({"name": 12345}, "_Annotated param name must be str or null, not 12345 (an integer); quote it: name: '12345'"),
        ({"names": "apple"}, "_Annotated param names must be list of str or null, not 'apple' (a string)"),
        ({"names": ["a", 2]}, "_Annotated param names must be list of str or null, not ['a', 2] (a list)"),
        ({"mapping": {"a": "1"}}, "_Annotated param mapping must be mapping of str to int or null"),
        ({"mapping": [1]}, "_Annotated param mapping must be mapping of str to int or null, not [1] (a list)"),
        ({"pair": [1, 2]}, "_Annotated param pair must be list of 2 values (int, str), not [1, 2] (a list)"),
    ],
)
def test_param_types_are_checked_against_the_constructors_annotations(params, expected):
    (error,) = plugins.check_param_types(_Annotated, params)
    assert str(error).startswith(expected), str(error)
    assert error.param == next(iter(params))


def test_values_that_fit_their_annotation_pass():
    good = {
        "count": 3,
        "ratio": 2,  # float takes an int
        "flag": False,
        "name": None,
        "names": ["a", "b"],
        "mapping": {"a": 1},
        "pair": [1, "x"],  # YAML has no tuples: a list of the right shape
        "loose": object(),  # unannotated: anything
        "anything": [{"x": 1}],
        "unknown": "not checked",  # the annotation cannot be resolved
    }
    assert plugins.check_param_types(_Annotated, good) == []
    assert set(plugins.param_hints(_Annotated)) == set(good) - {"loose", "unknown"}


def test_mockcloud_record_count_as_a_string_is_a_type_error():
    (error,) = plugins.check_param_types(MockCloud, {"record_count": "5", "record_types": ["a", "b"]})
    assert str(error) == (
        "MockCloud param record_count must be int, not '5' (a string); write it without quotes: record_count: 5"
    )
    assert plugins.check_param_types(MockCloud, {"record_types": "foo"})  # a string is not a list of record types


def test_classes_without_a_python_constructor_are_not_checked():
    class NoInit:
        pass

    assert plugins.check_param_types(NoInit, {"x": 1}) == []
    assert plugins.check_param_types(dict, {"x": 1}) == []

"""Records JSON cannot carry and event plugins that raise on one record (issue 12, items 4 and 5).

The repair, without Airflow; tests/integration/test_hostile_records.py runs the real ``cloudmarker -n``
and ``dag.test()`` on such records and plugins.
"""

from __future__ import annotations

import types

import pytest
from support.records import depth, unwrap_text

from airflow_cloudmarker import batches, results
from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import records as rec


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


def nested(levels, bottom="bottom"):
    value = bottom
    for _ in range(levels):
        value = [value]
    return value


# -- repair, without Airflow -------------------------------------------------------------------


def test_clean_records_are_encoded_unchanged_on_the_fast_path():
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti)
    records = [{"raw": {"data": i, "ok": 2**64 - 1, "low": -(2**63)}, "ext": {}, "com": {}} for i in range(3)]
    for i, record in enumerate(records):
        writer.add(record, i)
    manifest = writer.manifest(kind="cloud")
    assert manifest["repaired"] == 0 and writer.first_repair is None
    assert rec.loads(ti.pushed["batch_00000"]["records"]) == records


@pytest.mark.parametrize(
    ("raw", "expected", "field"),
    [
        ({"name": "caf\ud800e"}, {"name": "caf\ufffde"}, "raw.name: surrogates replaced with U+FFFD"),
        ({"pair": "\ud83d\ude00"}, {"pair": "\U0001f600"}, "raw.pair: surrogates"),  # a split pair is joined
        ({"size": 2**64}, {"size": "18446744073709551616"}, "raw.size: integer beyond 64 bits stored as a string"),
        ({"delta": -(2**63) - 1}, {"delta": "-9223372036854775809"}, "raw.delta: integer beyond 64 bits"),
        ({"tags": [1, {"x\udc80"}]}, {"tags": [1, ["x\ufffd"]]}, "raw.tags[1][0]: surrogates"),
        ({"k\udfff": 1}, {"k\ufffd": 1}, "raw.k\ufffd: surrogates in the key"),
        ({2**70: 1}, {"1180591620717411303424": 1}, "raw.1180591620717411303424: integer key beyond 64 bits"),
        ({(1, 2): 1}, {"(1, 2)": 1}, "raw.(1, 2): key of type tuple stored as its str()"),
    ],
)
def test_values_json_cannot_carry_are_repaired_and_named(raw, expected, field):
    ti = MemoryXCom()
    writer = batches.BatchWriter(ti)
    writer.add({"raw": {"data": 0}, "com": {}}, 0)
    writer.add({"raw": raw, "com": {"reference": "r"}}, 1)
    assert writer.manifest()["repaired"] == 1
    where, first, count = writer.first_repair
    assert where == 1 and first.startswith(field) and count == 1
    decoded = rec.loads(ti.pushed["batch_00000"]["records"])
    assert decoded == [{"raw": {"data": 0}, "com": {}}, {"raw": expected, "com": {"reference": "r"}}]


def test_nesting_deeper_than_json_allows_is_capped_and_kept_as_json_text():
    with pytest.raises(rec.JSONEncodeError):
        rec.dumps({"raw": nested(1000)})
    fixed, repairs = rec.repair({"raw": {"deep": nested(1000)}, "com": {}})
    assert depth(fixed) == rec.MAX_DEPTH
    assert repairs.count == 1 and "nested deeper than 64 levels: stored as its JSON text" in repairs.first
    assert repairs.first.startswith("raw.deep[0][0]...(56 levels)...[0][0][0][0]: ")  # a long path, shortened
    levels, text_part = unwrap_text(rec.loads(rec.dumps(fixed))["raw"]["deep"])
    assert levels + depth(text_part) == 1000  # nothing is lost: the deeper part is the JSON text
    assert text_part == nested(1000 - levels)


def test_json_text_walks_any_depth_without_recursion():
    text = rec.json_text({"a": nested(5000, {"k\ud800": 2**65})})
    assert text.startswith('{"a":' + "[" * 5000) and text.endswith(
        '{"k\ufffd":"36893488147419103232"}' + "]" * 5000 + "}"
    )
    assert len(text) == len('{"a":}') + 2 * 5000 + len('{"k\ufffd":"36893488147419103232"}')


def test_circular_references_and_unencodable_objects_become_markers():
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text")

    looped = {"data": 5}
    looped["parent"] = looped
    fixed, repairs = rec.repair({"raw": looped, "ext": {"obj": Unprintable(), "huge": 10**5000}})
    assert fixed["raw"] == {"data": 5, "parent": rec.CIRCULAR_MARKER}
    assert fixed["ext"]["obj"] == "<unencodable Unprintable>"
    assert fixed["ext"]["huge"].startswith("0x")  # beyond Python's decimal digits limit: hexadecimal, exact
    assert int(fixed["ext"]["huge"], 16) == 10**5000
    assert repairs.count == 3 and repairs.first.startswith("raw.parent: circular reference")
    rec.dumps(fixed)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("text", "is a str, not a dict"),
        (None, "is a NoneType, not a dict"),
        ([{"raw": {}}], "is a list, not a dict"),
        ({"raw": {}, "com": "x"}, "has a 'com' that is a str, not a dict"),
        ({"raw": {}, "ext": [1]}, "has a 'ext' that is a list, not a dict"),
    ],
)
def test_a_value_that_is_not_a_record_is_named(record, problem):
    assert rec.shape_problem(record) == problem


def test_records_without_buckets_or_with_empty_ones_are_records():
    assert rec.shape_problem({}) is None
    assert rec.shape_problem({"raw": [1], "ext": None, "com": {}}) is None


def test_summary_counts_add_repaired_and_skipped_where_counts_have_them():
    result = results.AuditResult(audit="a", state="success")
    results.count_manifest(result, {"kind": "cloud", "records": 8, "repaired": 5, "skipped": 2})
    results.count_manifest(result, {"kind": "event", "records": 3, "repaired": 1, "skipped": 4})
    assert (result.records, result.events, result.repaired, result.skipped) == (8, 3, 6, 6)
    plain = types.SimpleNamespace(records=0, events=0, written=0, new=0, resolved=0)  # the end-of-audit email's
    results.count_manifest(plain, {"kind": "cloud", "records": 8, "repaired": 5, "skipped": 2})
    assert plain.records == 8 and not hasattr(plain, "repaired")


def test_on_error_is_read_beside_plugin_and_checked(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("plugins:\n  mockevent:\n    on_error: skip\n")
    config = config_mod.load_config([str(good)])
    assert config.plugins["mockevent"].on_error == "skip" and config.plugins["mockcloud"].on_error == "fail"
    assert config.plugins["mockevent"].params == {}  # not taken as a param
    bad = tmp_path / "bad.yaml"
    bad.write_text("plugins:\n  mockevent:\n    on_error: ignore\n")
    with pytest.raises(config_mod.ConfigError) as error:
        config_mod.load_config([str(bad)])
    assert error.value.problems == [f"{bad}: plugins.mockevent.on_error: must be one of fail, skip, not 'ignore'"]

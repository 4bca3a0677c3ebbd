"""Records JSON cannot carry and event plugins that raise on one record (issue 12, items 4 and 5).

Unit tests of the repair run without Airflow; the end-to-end tests run the real ``cloudmarker -n``
as a new user does (one process for three audits) and, in-process, two runs of one audit to see
that a check which raised on a record keeps its findings open instead of resolving them.
"""

from __future__ import annotations

import json
import types

import pytest
from conftest import run_cli_as_user, user_config

from airflow_cloudmarker import batches, runner
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


def depth(value) -> int:
    """Levels of dicts and lists in ``value`` (iteratively: the input may be deeper than recursion allows)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def unwrap_text(value):
    """Follow a deep list down to the JSON text the repair left at the cap, and decode it."""
    levels = 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    return levels, json.loads(value)


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
    result = runner.AuditResult(audit="a", state="success")
    batches.count_manifest(result, {"kind": "cloud", "records": 8, "repaired": 5, "skipped": 2})
    batches.count_manifest(result, {"kind": "event", "records": 3, "repaired": 1, "skipped": 4})
    assert (result.records, result.events, result.repaired, result.skipped) == (8, 3, 6, 6)
    plain = types.SimpleNamespace(records=0, events=0, written=0, new=0, resolved=0)  # the end-of-audit email's
    batches.count_manifest(plain, {"kind": "cloud", "records": 8, "repaired": 5, "skipped": 2})
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


# -- end to end ----------------------------------------------------------------------------------


def referenced_records(count: int) -> list[dict]:
    return [
        {"raw": {"data": i}, "ext": {"record_type": "vm"}, "com": {"record_type": "vm", "reference": f"vm-{i}"}}
        for i in range(count)
    ]


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_hostile_records_and_raising_event_plugins_through_the_cloudmarker_command(user_home, tmp_path):
    vms = tmp_path / "vms.json"
    vms.write_text(json.dumps(referenced_records(15)))
    out = user_config(
        user_home,
        tmp_path,
        f"""\
plugins:
  hostile:
    plugin: cm_test_plugins.HostileCloud
  hostileevent:
    plugin: cm_test_plugins.HostileEvent
  vms:
    plugin: cm_test_plugins.RecordsFromFile
    params: {{path: {vms}}}
  raising:
    plugin: cm_test_plugins.RaisingEvent
    params: {{fail_on: [3, 5]}}
  lenient:
    plugin: cm_test_plugins.RaisingEvent
    on_error: skip
    params: {{fail_on: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}}
audits:
  hostileaudit:
    clouds: [hostile]
    events: [mockevent, hostileevent]
    stores: [filestore]
    alerts: [filestore]
  raisingaudit:
    clouds: [vms]
    events: [raising, mockevent]
    alerts: [filestore]
  lenientaudit:
    clouds: [vms]
    events: [lenient]
    alerts: [filestore]
run: [hostileaudit, raisingaudit, lenientaudit]
""",
    )
    result = run_cli_as_user("-n", home=user_home)
    console = result.stdout + result.stderr
    assert result.returncode == 1, console[-4000:]  # raisingaudit failed, the two others succeeded
    summary = {
        line.split()[0]: line.split() for line in result.stdout.splitlines() if line.endswith(tuple("0123456789"))
    }
    assert summary["hostileaudit"][1] == "success" and summary["lenientaudit"][1] == "success", result.stdout
    assert summary["raisingaudit"][1] == "failed", result.stdout
    log_text = (tmp_path / "cloudmarker.log").read_text(encoding="utf-8")

    # Item 4: the good and the repaired records of the hostile cloud are stored; two non-records skipped.
    stored = read_json(out / "hostileaudit_hostile.json")
    by_data = {r["raw"]["data"]: r["raw"] for r in stored}
    assert sorted(by_data) == [0, 1, 2, 3, 4, 5, 8, 9]
    assert by_data[1]["name"] == "caf\ufffde"
    assert (by_data[2]["size"], by_data[2]["delta"], by_data[2]["ok"]) == (str(2**64), str(-(2**63) - 1), 2**64 - 1)
    levels, text_part = unwrap_text(by_data[3]["deep"])
    assert levels + depth(text_part) == 1000 and depth(by_data[3]) <= rec.MAX_DEPTH
    assert by_data[5]["parent"] == rec.CIRCULAR_MARKER and by_data[8]["tags"] == ["a\ufffd"]
    assert all(r["com"]["origin_key"] == "hostile" for r in stored)
    # Repaired records are checked like the others; events JSON cannot carry are repaired too.
    assert [e["ext"]["data"] for e in read_json(out / "hostileaudit_mockevent.json")] == [0, 3, 9]
    hostile_events = read_json(out / "hostileaudit_hostileevent.json")
    assert sorted(e["com"]["description"] for e in hostile_events) == sorted(f"bad \ufffd {d}" for d in by_data)
    # One warning per plugin and task for the repairs; one line per skipped record.
    assert log_text.count("hostile: repaired 5 records holding values JSON cannot carry") == 1
    assert "(first: record 1, field raw.name: surrogates replaced with U+FFFD)" in log_text
    assert "hostile: skipped record 6: it is a str, not a dict" in log_text
    assert "hostile: skipped record 7: it has a 'com' that is a str, not a dict" in log_text
    assert "hostileevent: repaired 8 events holding values JSON cannot carry (first: an event of record 0" in log_text
    # 5 records and 8 events repaired; 2 records and 8 events (the strings) skipped.
    assert "repaired: 13, skipped: 10 (records and events; the log says which)" in result.stdout

    # Item 5: the records the check raised on are skipped and named; the other events are alerted.
    raised = read_json(out / "raisingaudit_raising.json")
    assert sorted(e["ext"]["data"] for e in raised) == [0, 1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert not any(e["ext"]["partial"] for e in raised)  # the event yielded before the raise is dropped
    assert [e["ext"]["data"] for e in read_json(out / "raisingaudit_mockevent.json")] == [0, 3, 6, 9, 12]
    assert "failed tasks: check_raising" in result.stdout
    assert (
        "raising: eval() raised on record 3 (reference 'vm-3', cloud vms); skipped: KeyError: 'no field for 3' "
        "(at cm_test_plugins.py:" in log_text
    )
    assert "raising: eval() raised on record 5 (reference 'vm-5', cloud vms)" in log_text
    assert (
        "check of plugin raising (cm_test_plugins.RaisingEvent) failed: CheckFailed: eval() raised on 2 of 15 "
        "records (first: record 3, reference 'vm-3': KeyError" in result.stdout
    )
    # on_error: skip: the run succeeds; the first 10 failures in full, then a count.
    assert sorted(e["ext"]["data"] for e in read_json(out / "lenientaudit_lenient.json")) == [12, 13, 14]
    assert log_text.count("lenient: eval() raised on record") == 10
    assert "lenient: 2 more records on which eval() raised not logged one by one (12 in all)" in log_text


def test_a_check_that_raised_on_a_record_keeps_its_findings_open(airflow_db, home, tmp_path):
    vms = tmp_path / "vms.json"
    vms.write_text(json.dumps(referenced_records(4)))
    alerts = tmp_path / "alerts.jsonl"
    base = tmp_path / "audit.yaml"
    base.write_text(
        f"""\
plugins:
  vms: {{plugin: cm_test_plugins.RecordsFromFile, params: {{path: {vms}}}}}
  raising: {{plugin: cm_test_plugins.RaisingEvent, params: {{fail_on: []}}}}
  recorder: {{plugin: cm_test_plugins.RecordingAlert, params: {{path: {alerts}}}}}
audits:
  vmaudit: {{clouds: [vms], events: [raising], alerts: [recorder]}}
run: [vmaudit]
logger:
  handlers:
    file:
      filename: {tmp_path}/cloudmarker.log
"""
    )

    def run(*fail_on):
        override = tmp_path / "override.yaml"
        override.write_text(json.dumps({"plugins": {"raising": {"params": {"fail_on": list(fail_on)}}}}))
        paths = [str(base), str(override)]
        (result,) = runner.run_now(config_mod.load_config(paths), paths)
        return result, json.loads(alerts.read_text().splitlines()[-1])

    result, alerted = run()
    assert (result.state, result.new) == ("success", 4)
    # Record 2 now makes the plugin raise: the event of vm-2 is missing, but that proves nothing.
    result, alerted = run(2)
    assert (result.state, result.failed_tasks, result.resolved) == ("failed", ["check_raising"], 0)
    assert sorted((e["com"]["reference"], e["com"]["status"]) for e in alerted) == [
        ("ref-0", "open"),
        ("ref-1", "open"),
        ("ref-3", "open"),
    ]
    # The plugin is fixed: vm-2's finding was carried over, so it is still open, not new.
    result, alerted = run()
    assert (result.state, result.new, result.resolved) == ("success", 0, 0)
    assert {e["com"]["status"] for e in alerted} == {"open"} and len(alerted) == 4

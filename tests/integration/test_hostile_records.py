"""Records JSON cannot carry and event plugins that raise on one record, end to end (issue 12, items 4 and 5).

The real ``cloudmarker -n`` as a new user runs it (one process for three audits) and, in-process, two
runs of one audit to see that a check which raised on a record keeps its findings open instead of
resolving them. The repair itself is tested without Airflow in tests/unit/test_hostile_records.py.
"""

from __future__ import annotations

import json

from support.cli import run_cli_as_user, user_config
from support.records import depth, unwrap_text

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import records as rec
from airflow_cloudmarker import runner


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

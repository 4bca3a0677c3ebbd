"""Findings lifecycle: ids, severity, new / open / resolved across runs, alert_on: changes."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import findings, runner


def firewall_rule(name: str, ports: list[str], cloud_key: str = "rules") -> dict:
    """A normalized firewall_rule record as AzCloud and GCPCloud emit them."""
    return {
        "raw": {"name": name},
        "ext": {"cloud_type": "azure", "record_type": "firewall_rule"},
        "com": {
            "cloud_type": "azure",
            "record_type": "firewall_rule",
            "reference": f"/subscriptions/s/nsg/{name}",
            "enabled": True,
            "direction": "in",
            "access": "allow",
            "protocol": "tcp",
            "source_addresses": ["0.0.0.0/0"],
            "destination_ports": ports,
        },
    }


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
    out: list[dict] = []
    outcome = findings.track(
        store, run_id, f"2026-01-0{run_id[-1]}T00:00:00+00:00", events, scope or findings.Scope(), out.append
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


# -- end to end through dag.test -------------------------------------------------------------


@pytest.fixture
def audit(home, tmp_path):
    rules = tmp_path / "rules.json"
    other = tmp_path / "other.json"
    config = tmp_path / "audit.yaml"
    config.write_text(
        f"""
plugins:
  rules:
    plugin: cm_test_plugins.RecordsFromFile
    params: {{path: {rules}}}
  other:
    plugin: cm_test_plugins.RecordsFromFile
    params: {{path: {other}}}
  recorder:
    plugin: cm_test_plugins.RecordingAlert
    params: {{path: {tmp_path}/alerts.jsonl}}
  filestore:
    params: {{path: {tmp_path}/out}}
audits:
  fwaudit:
    clouds: [rules, other]
    events: [firewallruleevent]
    stores: [filestore]
    alerts: [filestore, recorder]
    alert_on: changes
run: [fwaudit]
logger:
  handlers:
    file:
      filename: {tmp_path}/cloudmarker.log
"""
    )
    other.write_text(json.dumps([firewall_rule("db", ["3306"])]))
    return {"rules": rules, "other": other, "config": config, "dir": tmp_path}


def run_audit(audit, **overrides):
    paths = [str(audit["config"])]
    if overrides:
        extra = audit["dir"] / "override.yaml"
        extra.write_text(json.dumps(overrides))
        paths.append(str(extra))
    config = config_mod.load_config(paths)
    (result,) = runner.run_now(config, paths)
    events = json.loads((audit["dir"] / "out" / "fwaudit_firewallruleevent.json").read_text())
    alerted = json.loads((audit["dir"] / "alerts.jsonl").read_text().splitlines()[-1])
    return result, events, alerted


def test_port_opened_kept_closed_across_three_runs(airflow_db, audit):
    audit["rules"].write_text(json.dumps([firewall_rule("web", ["22", "443"])]))
    result, events, alerted = run_audit(audit)
    assert (result.state, result.new, result.resolved) == ("success", 2, 0)
    ssh = next(e for e in events if e["com"]["reference"].endswith("/web"))
    assert ssh["com"]["status"] == "new" and ssh["com"]["severity"] == "high"
    assert ssh["com"]["exposed_ports"] == [22]
    assert sorted(e["com"]["status"] for e in alerted) == ["new", "new"]

    result, events, alerted = run_audit(audit)  # kept: open, same id, no alert with alert_on: changes
    assert {e["com"]["status"] for e in events} == {"open"}
    again = next(e for e in events if e["com"]["reference"].endswith("/web"))
    assert again["com"]["finding_id"] == ssh["com"]["finding_id"]
    assert again["com"]["first_seen"] == ssh["com"]["first_seen"]
    assert alerted == []

    audit["rules"].write_text(json.dumps([firewall_rule("web", ["443"])]))  # closed
    result, events, alerted = run_audit(audit)
    assert (result.new, result.resolved) == (0, 1)
    assert [e["com"]["status"] for e in alerted] == ["resolved"]
    assert alerted[0]["com"]["finding_id"] == ssh["com"]["finding_id"]
    assert "22" in alerted[0]["com"]["description"]


def test_failed_fetch_marks_nothing_resolved(airflow_db, audit):
    audit["rules"].write_text(json.dumps([firewall_rule("web", ["22"])]))
    run_audit(audit)
    # The cloud holding the db rule fails mid-way, after yielding nothing: its finding stays open.
    audit["other"].write_text("[]")
    result, events, alerted = run_audit(audit, plugins={"other": {"params": {"fail": True}}})
    assert result.state == "failed" and result.failed_tasks == ["fetch_other"]
    assert result.resolved == 0
    assert alerted == []
    assert len(findings.StateStore(f"file://{audit['dir']}/findings", "fwaudit").current_findings()) == 2

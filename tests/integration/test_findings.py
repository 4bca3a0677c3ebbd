"""Findings across real runs: new / open / resolved and alert_on: changes through ``dag.test()`` and the
``cloudmarker`` command. The lifecycle logic itself is tested without Airflow in tests/unit/test_findings.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli_as_user, user_config

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import findings, runner


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


# -- end to end through dag.test -------------------------------------------------------------


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


# -- end to end through the cloudmarker command -----------------------------------------------


def mock_events(out: Path) -> list[dict]:
    return json.loads((out / "mockaudit_mockevent.json").read_text())


def test_cloudmarker_recovers_from_a_snapshot_cut_mid_line(user_home, tmp_path):
    """A user's findings state damaged between two runs: the next run warns once, starts fresh, succeeds."""
    out = user_config(user_home, tmp_path)
    state = user_home / ".cloudmarker" / "airflow" / "xcom" / "cloudmarker-findings" / "mockaudit"

    first = run_cli_as_user("-n", home=user_home)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    first_events = mock_events(out)
    assert {e["com"]["status"] for e in first_events} == {"new"}
    snapshot = only(state, "*.jsonl")
    snapshot.write_bytes(snapshot.read_bytes()[:-40])  # cut mid-line, as a full disk or a kill leaves it

    second = run_cli_as_user("-n", home=user_home)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-5000:]
    assert "Traceback" not in output
    (warning,) = [line for line in output.splitlines() if "damaged" in line]
    (aside,) = state.glob("damaged-*")
    assert "WARNING" in warning and snapshot.name in warning and f"{aside.name}/" in warning
    assert (aside / snapshot.name).exists() and (aside / "HEAD.json").exists()
    # The alert plugin (FileStore as alert) got this run's events, all new.
    events = mock_events(out)
    assert len(events) == len(first_events)
    assert {e["com"]["status"] for e in events} == {"new"}
    assert {e["com"]["audit_version"] for e in events}.isdisjoint({e["com"]["audit_version"] for e in first_events})

    third = run_cli_as_user("-n", home=user_home)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "damaged" not in third.stdout + third.stderr
    assert {e["com"]["status"] for e in mock_events(out)} == {"open"}

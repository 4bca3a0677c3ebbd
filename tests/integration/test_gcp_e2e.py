"""The tutorial's GCP audit end to end: its config verbatim, through Airflow's dag.test (``runner.run_now``,
what ``cloudmarker -n`` runs), the real Google client against tests/servers/gcp.py, FileStore output.

``./cloudmarker.yaml`` is the tutorial's text and ``keyfile.json`` sits next to it (the relative
path resolves against the current directory); ``~/.cloudmarker.yaml`` only points the output,
the log file and the API endpoints at the test's own places, as the config cascade allows.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from servers.gcp import GCPServer, tutorial_world

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

TUTORIAL_GCP = """\
plugins:
  mygcpcloud:
    plugin: cloudmarker.clouds.gcpcloud.GCPCloud
    params:
      key_file_path: keyfile.json
      zone: null

audits:
  mygcpaudit:
    clouds:
      - mygcpcloud
    stores:
      - filestore
    events:
      - firewallruleevent
    alerts:
      - filestore

run:
  - mygcpaudit
"""


@pytest.fixture
def gcp(tmp_path):
    with GCPServer(tutorial_world()) as server:
        yield server


def write_configs(home, tmp_path, endpoints: dict, config: str = TUTORIAL_GCP) -> tuple[list[str], object]:
    out = tmp_path / "out"
    work = home.parent / "work"
    (work / "cloudmarker.yaml").write_text(config)
    (home / ".cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out}\n"
        f"  mygcpcloud:\n    params:\n      api_endpoints: {json.dumps(endpoints)}\n"
        f"logger:\n  handlers:\n    file:\n      filename: {tmp_path}/cloudmarker.log\n"
    )
    return [str(home / ".cloudmarker.yaml"), "cloudmarker.yaml"], out


def run(paths):
    return runner.run_now(config_mod.load_config(paths), paths)


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def test_tutorial_gcp_audit_writes_records_and_firewall_events(airflow_db, home, tmp_path, gcp):
    paths, out = write_configs(home, tmp_path, gcp.endpoints)
    key = gcp.make_key(home.parent / "work" / "keyfile.json")
    [result] = run(paths)
    assert result.state == "success", result
    assert result.failed_tasks == []

    records = read_json(out / "mygcpaudit_mygcpcloud.json")
    assert Counter((r["ext"]["project_id"], r["ext"]["record_type"]) for r in records) == {
        ("web-prod", "project"): 1,
        ("web-prod", "firewall"): 5,
        ("web-prod", "firewall_rule"): 7,
        ("web-prod", "instance"): 3,
        ("analytics", "project"): 1,
        ("shared-vpc", "project"): 1,
        ("shared-vpc", "firewall"): 1,
        ("shared-vpc", "firewall_rule"): 1,
        ("shared-vpc", "instance"): 1,
    }
    analytics = next(r for r in records if r["ext"]["project_id"] == "analytics")
    assert "accessNotConfigured" in analytics["ext"]["compute_error"]
    assert {r["ext"]["zone"] for r in records if r["ext"]["record_type"] == "instance"} == {
        "us-east1-b",
        "europe-west1-c",
        "asia-east1-a",
    }
    assert all(
        r["com"]["origin_worker"] == "mygcpaudit_mygcpcloud" and r["com"]["cloud_type"] == "gcp" for r in records
    )
    assert {r["ext"]["client_email"] for r in records} == {key["client_email"]}
    assert gcp.api_calls("/zones/") == []  # every zone came from aggregatedList

    events = read_json(out / "mygcpaudit_firewallruleevent.json")
    found = sorted((e["com"]["reference"].rsplit("/", 1)[1], e["com"]["exposed_ports"]) for e in events)
    assert found == [("allow-ssh", [22]), ("any-any", [22, 1433, 1521, 3306, 3389, 5432]), ("rdp-and-web", [3389])]
    for event in events:
        assert event["com"]["cloud_type"] == "gcp" and event["com"]["record_type"] == "firewall_rule_event"
        assert "Google Cloud Platform" in event["com"]["description"]
        assert event["com"]["origin_worker"] == "mygcpaudit_firewallruleevent"

    everything = (out / "mygcpaudit_mygcpcloud.json").read_text() + (
        out / "mygcpaudit_firewallruleevent.json"
    ).read_text()
    assert "PRIVATE KEY" not in everything and key["private_key_id"] not in everything
    log_text = (tmp_path / "cloudmarker.log").read_text()
    assert "PRIVATE KEY" not in log_text and key["private_key_id"] not in log_text


def test_key_from_an_airflow_connection(airflow_db, home, tmp_path, gcp, monkeypatch):
    key = gcp.make_key(tmp_path / "conn-key.json", email="conn@test-project.iam.gserviceaccount.com")
    conn = {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(key)}}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_AUDIT", json.dumps(conn))
    config = TUTORIAL_GCP.replace("key_file_path: keyfile.json", "conn_id: gcp_audit")
    paths, out = write_configs(home, tmp_path, gcp.endpoints, config)
    [result] = run(paths)
    assert result.state == "success", result
    records = read_json(out / "mygcpaudit_mygcpcloud.json")
    assert {r["ext"]["client_email"] for r in records} == {"conn@test-project.iam.gserviceaccount.com"}
    assert len(read_json(out / "mygcpaudit_firewallruleevent.json")) == 3


def test_missing_key_file_fails_the_run_with_one_clear_error(airflow_db, home, tmp_path, gcp, capfd):
    paths, out = write_configs(home, tmp_path, gcp.endpoints)  # no keyfile.json written
    [result] = run(paths)
    assert result.state == "failed"
    assert (
        result.failed_tasks == ["fetch_mygcpcloud", "shards_mygcpcloud"] or "shards_mygcpcloud" in result.failed_tasks
    )
    captured = capfd.readouterr()
    resolved = home.parent / "work" / "keyfile.json"
    expected = f"the service-account key file keyfile.json (resolved to {resolved}) does not exist"
    assert expected in captured.out + captured.err + (tmp_path / "cloudmarker.log").read_text()
    assert gcp.api_calls() == []

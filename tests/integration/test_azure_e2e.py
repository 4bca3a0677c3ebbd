"""The tutorial's AzCloud and AzVM configs end to end through Airflow (``runner.run_now``, what
``cloudmarker -n`` calls), with the real Azure SDKs talking to the local HTTPS server."""

from __future__ import annotations

import json
import os

import pytest
from servers.azure import FakeAzure

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

AZCLOUD = """\
plugins:
  myazcloud:
    plugin: cloudmarker.clouds.azcloud.AzCloud
    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
      retry_backoff: 0

  firewallruleevent:
    params:
      ports:
        - 22
        - 3389

audits:
  myazaudit:
    clouds:
      - myazcloud
    stores:
      - filestore
    events:
      - firewallruleevent
    alerts:
      - filestore

run:
  - myazaudit
"""

AZVM = """\
plugins:
  myazvm:
    plugin: cloudmarker.clouds.azvm.AzVM
    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}

audits:
  myazaudit:
    clouds:
      - myazvm
    stores:
      - filestore
    events:
      - firewallruleevent
      - azvmosdiskencryptionevent
      - azvmdatadiskencryptionevent
    alerts:
      - filestore

run:
  - myazaudit
"""


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with FakeAzure(tmp_path / "ca", subscriptions=3, vms=2, page_size=2) as az:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield az


def run(home, text, az):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        text.format(tenant=az.tenant, client=az.client, secret=az.secret, url=az.url)
    )
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    return result


def read_json(path):
    with open(path) as f:
        return json.load(f)


def secret_found_under(root, secret: str) -> list[str]:
    hits = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                if secret.encode() in f.read():
                    hits.append(path)
    return hits


def test_azcloud_tutorial_config_with_one_failing_subscription(airflow_db, azure, out_dir, home, tmp_path):
    bad = list(azure.subs)[1]
    azure.fail[f"^/subscriptions/{bad}/providers/Microsoft.Network/networkSecurityGroups"] = 403
    good = list(azure.subs)[0]
    # One throttled call, retried, in a subscription that completes (a failed shard logs no "read" line).
    azure.throttle[rf"^/subscriptions/{good}/providers/Microsoft.Compute/virtualMachines$"] = 1
    result = run(home, AZCLOUD, azure)
    assert result.state == "failed"
    assert result.failed_tasks == ["fetch_myazcloud"]  # only the mapped fetch task of the bad subscription
    records = read_json(out_dir / "myazaudit_myazcloud.json")
    subs = set(azure.subs) - {bad}
    # The bad subscription's records read before its NSG listing failed are kept; none of its NSGs.
    assert {r["ext"]["subscription_id"] for r in records if r["ext"]["record_type"] == "nsg"} == subs
    per_sub = [r for r in records if r["ext"]["subscription_id"] == next(iter(azure.subs))]
    assert sorted({r["ext"]["record_type"] for r in per_sub}) == [
        "app_gateway",
        "firewall_rule",
        "lb",
        "nic",
        "nsg",
        "public_ip",
        "resource_group",
        "storage_account",
        "subscription",
        "virtual_machine",
    ]
    assert records[0]["com"]["origin_worker"] == "myazaudit_myazcloud"
    events = read_json(out_dir / "myazaudit_firewallruleevent.json")
    # Each good subscription's NSG allows SSH from the Internet; ports 22 and 3389 are watched.
    assert sorted(e["ext"]["subscription_id"] for e in events) == sorted(subs)
    assert {tuple(e["com"]["exposed_ports"]) for e in events} == {(22,)}
    assert all(e["com"]["reference"].endswith("/securityRules/allow-ssh") for e in events)
    assert [s for _, p, s in azure.calls if p.endswith("/virtualMachines")].count(429) == 1
    summary = [line for line in (tmp_path / "cloudmarker.log").read_text().splitlines() if "shard): read" in line]
    assert len(summary) == len(azure.subs) and "; 1 throttled calls" in "".join(summary), (
        summary
    )  # one line per fetch task
    assert not secret_found_under(out_dir, azure.secret)
    assert not secret_found_under(os.environ["AIRFLOW_HOME"], azure.secret)


def test_azvm_tutorial_config_with_disk_events(airflow_db, azure, out_dir, home):
    result = run(home, AZVM, azure)
    assert result.state == "success", result
    records = read_json(out_dir / "myazaudit_myazvm.json")
    assert len(records) == 6 and {r["ext"]["record_type"] for r in records} == {"vm_instance_view"}
    os_events = read_json(out_dir / "myazaudit_azvmosdiskencryptionevent.json")
    data_events = read_json(out_dir / "myazaudit_azvmdatadiskencryptionevent.json")
    # In each subscription vm-N-1 is unencrypted: its OS disk and data disk data0 (data1 is encrypted).
    assert sorted(e["com"]["finding_key"] for e in os_events) == [f"vm-{i}-1-os" for i in range(3)]
    assert sorted(e["com"]["finding_key"] for e in data_events) == [f"vm-{i}-1-data0" for i in range(3)]
    assert all(e["com"]["severity"] == "medium" for e in os_events + data_events)
    assert not (out_dir / "myazaudit_firewallruleevent.json").exists() or not read_json(
        out_dir / "myazaudit_firewallruleevent.json"
    )

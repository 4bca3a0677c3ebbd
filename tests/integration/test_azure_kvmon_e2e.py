"""AzKV and AzMonitor end to end through Airflow (``runner.run_now``, what ``cloudmarker -n`` calls) by
their base config keys, with the real Azure SDKs against the local ARM + Key Vault server."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from servers import azure_keyvault, azure_monitor
from servers.azure import FakeAzure

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

CONFIG = """\
plugins:
  azkv:
    params: &azure
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
      retry_backoff: 0
  azmonitor:
    params: *azure

audits:
  myazaudit:
    clouds: [azkv, azmonitor]
    stores: [filestore]
    events: [azactivitylogdiagnosticsettingevent]
    alerts: [filestore]

run:
  - myazaudit
"""


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with FakeAzure(tmp_path / "ca", subscriptions=3, vms=0, page_size=2) as az:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        az.keyvault = azure_keyvault.install(az)
        azure_monitor.populate(az)
        yield az


def read_json(path):
    with open(path) as f:
        return json.load(f)


def test_kv_and_monitor_audit_with_one_vault_refusing_its_keys(airflow_db, azure, out_dir, home):
    sub0, sub1, sub2 = azure.subscription_ids()
    azure.keyvault.deny("kv-1-b", "keys")
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        CONFIG.format(tenant=azure.tenant, client=azure.client, secret=azure.secret, url=azure.url)
    )
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    assert result.state == "failed"
    assert result.failed_tasks == ["fetch_azkv"]  # the fetch task holding subscription 1
    vaults = read_json(out_dir / "myazaudit_azkv.json")
    per_sub = Counter(r["ext"]["subscription_id"] for r in vaults)
    assert per_sub[sub0] == per_sub[sub2] == 11
    # The refused keys are missing; the vault's own record, its secrets and the other vault are delivered.
    refused = [r for r in vaults if "kv-1-b" in str(r["com"]["reference"])]
    assert {r["ext"]["record_type"] for r in refused} == {"key_vault", "key_vault_secret"}
    assert 0 < per_sub[sub1] < 11
    assert all(r["com"]["origin_worker"] == "myazaudit_azkv" for r in vaults)
    monitor = read_json(out_dir / "myazaudit_azmonitor.json")
    assert sorted(r["ext"]["record_type"] for r in monitor) == sorted(
        ["log_profile", "log_profile", "log_profile_missing"] + ["activity_log_diagnostic_settings"] * 3
    )
    events = read_json(out_dir / "myazaudit_azactivitylogdiagnosticsettingevent.json")
    assert {(e["com"]["reference"], e["com"]["check_id"]) for e in events} == {
        (f"/subscriptions/{sub1}", "azure_activity_log_missing_categories"),
        (f"/subscriptions/{sub2}", "azure_activity_log_not_exported"),
    }
    for root in (out_dir, os.environ["AIRFLOW_HOME"]):
        for folder, _, files in os.walk(root):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    data = f.read()
                assert azure.secret.encode() not in data and b"s3cr3t-value-of-" not in data, name

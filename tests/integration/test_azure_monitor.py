"""AzMonitor with the real azure-mgmt-monitor / subscriptions clients against the local ARM server.

Three subscriptions (``tests/servers/azure_monitor.py``): 0 has a full log profile and a complete
diagnostic-settings export, 1 a partial profile (no retention policy) and an export without Alert,
Policy and Security, 2 neither. The records then go through AzActivityLogDiagnosticSettingEvent.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from servers import azure_monitor
from servers.azure import FakeAzure
from servers.azure import plugin_params as params

from airflow_cloudmarker.azure.arm import ItemReadError
from airflow_cloudmarker.clouds.azmonitor import AzMonitor
from airflow_cloudmarker.events.azactivitylogdiagnosticsettingevent import AzActivityLogDiagnosticSettingEvent

COMMON = ("cloud_type", "record_type", "subscription_id", "subscription_name", "subscription_state", "tenant_id")


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with FakeAzure(tmp_path / "ca", subscriptions=3, page_size=2) as az:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        azure_monitor.populate(az)
        yield az


def read_all(cloud):
    records = [r for shard in cloud.shards() for r in cloud.read(shard)]
    cloud.done()
    return records


def of_type(records, record_type):
    return {r["ext"]["subscription_id"]: r for r in records if r["ext"]["record_type"] == record_type}


def test_log_profile_records(azure):
    sub0, sub1, sub2 = azure.subscription_ids()
    records = read_all(AzMonitor(**params(azure)))
    assert Counter(r["ext"]["record_type"] for r in records) == {
        "log_profile": 2,
        "log_profile_missing": 1,
        "activity_log_diagnostic_settings": 3,
    }
    for r in records:
        assert r["com"]["record_type"] == r["ext"]["record_type"] and r["com"]["cloud_type"] == "azure"
    profiles = of_type(records, "log_profile")
    full = profiles[sub0]
    assert full["com"]["reference"] == f"/subscriptions/{sub0}/providers/microsoft.insights/logprofiles/default"
    assert {
        k: full["ext"][k] for k in ("retention_enabled", "retention_days", "subscription_locations", "locations")
    } == {
        "retention_enabled": True,
        "retention_days": 365,
        "subscription_locations": ["eastus", "westeurope", "japaneast"],
        "locations": ["eastus", "westeurope", "japaneast", "global"],
    }
    assert full["raw"]["categories"] == ["Write", "Delete", "Action"]  # readable as the log-profile events read it
    assert full["raw"]["locations"] == full["ext"]["locations"]
    assert full["raw"]["retention_policy"] == {"enabled": True, "days": 365}
    partial = profiles[sub1]  # no retention policy at all: kept, not a crash
    assert (partial["ext"]["retention_enabled"], partial["ext"]["retention_days"]) == (False, 0)
    assert partial["raw"]["categories"] == ["Write"] and partial["ext"]["locations"] == ["eastus", "global"]
    assert "retention_policy" not in partial["raw"]
    missing = of_type(records, "log_profile_missing")[sub2]
    assert missing["raw"] is None
    assert missing["com"] == {
        "cloud_type": "azure",
        "record_type": "log_profile_missing",
        "reference": f"/subscriptions/{sub2}",
    }
    assert set(missing["ext"]) == set(COMMON)  # the common fields only, as the original


def test_diagnostic_settings_records(azure):
    sub0, sub1, sub2 = azure.subscription_ids()
    settings = of_type(read_all(AzMonitor(**params(azure))), "activity_log_diagnostic_settings")
    complete = settings[sub0]
    assert complete["com"]["reference"] == f"/subscriptions/{sub0}"
    assert [s["name"] for s in complete["raw"]["value"]] == ["to-workspace", "to-storage"]
    assert complete["raw"]["value"][0]["properties"]["logs"][0] == {"category": "Administrative", "enabled": True}
    ext = {k: v for k, v in complete["ext"].items() if k not in COMMON}
    rg = f"/subscriptions/{sub0}/resourceGroups/rg-logs/providers"
    assert ext == {
        "exported": True,
        "enabled_categories": ["Administrative", "Alert", "Policy", "Security", "ServiceHealth"],
        "missing_categories": [],
        "destinations": [
            {
                "setting": "to-workspace",
                "type": "log_analytics_workspace",
                "id": f"{rg}/Microsoft.OperationalInsights/workspaces/central",
            },
            {
                "setting": "to-storage",
                "type": "storage_account",
                "id": f"{rg}/Microsoft.Storage/storageAccounts/archive",
            },
        ],
    }
    partial = settings[sub1]["ext"]
    assert (partial["exported"], partial["enabled_categories"]) == (True, ["Administrative", "ServiceHealth"])
    assert partial["missing_categories"] == ["Alert", "Policy", "Security"]  # Security is listed but disabled
    assert [d["type"] for d in partial["destinations"]] == ["event_hub"]
    none = settings[sub2]
    assert none["raw"] == {"value": []}
    assert (none["ext"]["exported"], none["ext"]["enabled_categories"], none["ext"]["destinations"]) == (False, [], [])
    assert none["ext"]["missing_categories"] == ["Administrative", "Alert", "Policy", "Security"]


def test_call_counts(azure):
    subs = azure.subscription_ids()
    read_all(AzMonitor(**params(azure)))
    counts = azure.counts()
    for index, sub in enumerate(subs):
        assert counts[("GET", f"/subscriptions/{sub}/providers/Microsoft.Insights/logprofiles")] == 1
        assert counts[("GET", f"/subscriptions/{sub}/providers/Microsoft.Insights/diagnosticSettings")] == 1
        # locations only where a profile needs them: 3 regions in pages of 2
        assert counts[("GET", f"/subscriptions/{sub}/locations")] == (2 if index < 2 else 0)
        assert counts[("GET", f"/subscriptions/{sub}")] == 1  # the shard's subscription
    arm = [c for c in azure.arm_calls() if c[1] != "/subscriptions"]
    assert len(arm) == 3 * 3 + 2 * 2  # per subscription: itself, profiles, settings; locations 2 pages x 2


def test_the_event_on_the_records(azure):
    sub0, sub1, sub2 = azure.subscription_ids()
    event = AzActivityLogDiagnosticSettingEvent()
    events = {e["com"]["reference"]: e for r in read_all(AzMonitor(**params(azure))) for e in event.eval(r)}
    assert set(events) == {f"/subscriptions/{sub1}", f"/subscriptions/{sub2}"}
    partial = events[f"/subscriptions/{sub1}"]["com"]
    assert (partial["check_id"], partial["severity"], partial["finding_key"]) == (
        "azure_activity_log_missing_categories",
        "low",
        "Alert,Policy,Security",
    )
    none = events[f"/subscriptions/{sub2}"]["com"]
    assert (none["check_id"], none["severity"]) == ("azure_activity_log_not_exported", "medium")


def test_a_failing_item_loses_only_itself(azure):
    sub1 = azure.subscription_ids()[1]
    azure.fail[f"^/subscriptions/{sub1}/providers/Microsoft.Insights/diagnosticSettings$"] = 403
    records = []
    with pytest.raises(ItemReadError) as failure:
        for record in AzMonitor(**params(azure)).read(sub1):
            records.append(record)
    assert f"1 of 2 items could not be read (/subscriptions/{sub1} (diagnostic_settings))" in str(failure.value)
    assert "AuthorizationFailed" in str(failure.value)
    assert [r["ext"]["record_type"] for r in records] == ["log_profile"]


def test_diagnostic_settings_request_is_retried_when_throttled(azure):
    sub2 = azure.subscription_ids()[2]
    azure.throttle[r"/diagnosticSettings$"] = 1
    started = time.monotonic()
    records = list(AzMonitor(**params(azure)).read(sub2))
    assert time.monotonic() - started >= 1.0  # waited the Retry-After: 1
    assert len(records) == 2
    statuses = [s for _, p, s in azure.calls if p.endswith("/diagnosticSettings")]
    assert statuses == [429, 200]

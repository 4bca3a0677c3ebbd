"""AzActivityLogDiagnosticSettingEvent's conditions, the diagnostic-settings summary, and AzKV/AzMonitor params."""

from __future__ import annotations

import pytest

from airflow_cloudmarker.azure import activitylog
from airflow_cloudmarker.azure.arm import AzureConfigError
from airflow_cloudmarker.clouds.azkv import AzKV
from airflow_cloudmarker.clouds.azmonitor import AzMonitor
from airflow_cloudmarker.events.azactivitylogdiagnosticsettingevent import (
    MISSING_CATEGORIES_CHECK,
    NOT_EXPORTED_CHECK,
    AzActivityLogDiagnosticSettingEvent,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000007"


def record(exported=True, enabled=("Administrative", "Alert", "Policy", "Security"), **ext):
    return {
        "raw": {"value": []},
        "ext": {
            "cloud_type": "azure",
            "record_type": "activity_log_diagnostic_settings",
            "subscription_id": SUB.rsplit("/", 1)[1],
            "exported": exported,
            "enabled_categories": list(enabled),
            **ext,
        },
        "com": {"cloud_type": "azure", "record_type": "activity_log_diagnostic_settings", "reference": SUB},
    }


def events(rec, **params):
    return list(AzActivityLogDiagnosticSettingEvent(**params).eval(rec))


def test_a_complete_export_gives_no_event():
    assert events(record()) == []
    assert events(record(enabled=["Administrative", "Alert", "Policy", "Security", "ServiceHealth"])) == []


def test_no_export_is_one_medium_event_for_the_subscription():
    (event,) = events(record(exported=False, enabled=[]))
    com = event["com"]
    assert com["check_id"] == NOT_EXPORTED_CHECK.check_id == "azure_activity_log_not_exported"
    assert (com["severity"], com["cloud_type"], com["reference"]) == ("medium", "azure", SUB)
    assert com["record_type"] == event["ext"]["record_type"] == "activity_log_not_exported_event"
    assert "finding_key" not in com  # one such finding per subscription
    assert com["description"] == f"Azure subscription {SUB} has no diagnostic setting that exports its activity log."
    assert "Administrative, Alert, Policy and Security categories" in com["recommendation"]
    assert event["ext"]["missing_categories"] == ["Administrative", "Alert", "Policy", "Security"]
    assert event["ext"]["subscription_id"] == SUB.rsplit("/", 1)[1]  # the source ext is kept


def test_missing_categories_is_one_low_event_keyed_by_the_missing_categories():
    (event,) = events(record(enabled=["Administrative", "ServiceHealth"]))
    com = event["com"]
    assert com["check_id"] == MISSING_CATEGORIES_CHECK.check_id
    assert (com["severity"], com["finding_key"]) == ("low", "Alert,Policy,Security")
    assert com["record_type"] == "activity_log_missing_categories_event"
    assert "without the Alert, Policy and Security categories" in com["description"]
    assert event["ext"]["missing_categories"] == ["Alert", "Policy", "Security"]
    (one,) = events(record(enabled=["Administrative", "Alert", "Policy"]))
    assert one["com"]["finding_key"] == "Security"
    assert "without the Security categories" in one["com"]["description"]


def test_not_exported_wins_over_missing_categories():
    """Nothing exported: one not-exported event, not a second one for every category."""
    assert [e["com"]["check_id"] for e in events(record(exported=False, enabled=["Administrative"]))] == [
        "azure_activity_log_not_exported"
    ]


def test_categories_param_sets_the_required_set_in_any_case():
    rec = record(enabled=["Administrative", "Alert", "Policy", "Security"])
    (event,) = events(rec, categories=["administrative", "servicehealth", "ServiceHealth"])
    assert event["com"]["finding_key"] == "ServiceHealth"
    assert events(record(enabled=["administrative"]), categories=["Administrative"]) == []
    assert events(rec, categories=None) == []  # None: the CIS set


def test_severity_param_applies_to_both_checks():
    assert events(record(exported=False, enabled=[]), severity="high")[0]["com"]["severity"] == "high"
    assert events(record(enabled=[]), severity="critical")[0]["com"]["severity"] == "critical"


@pytest.mark.parametrize(
    "rec",
    [
        None,
        "text",
        {},
        {"ext": None},
        {"ext": "x"},
        {"ext": {"record_type": "log_profile", "exported": False, "enabled_categories": []}},
        record(exported="no"),
        record(exported=None),
        {"ext": {**record()["ext"], "enabled_categories": "Administrative"}},
        {"ext": {**record()["ext"], "enabled_categories": None}},
        {"ext": {k: v for k, v in record()["ext"].items() if k != "exported"}},
    ],
)
def test_foreign_and_malformed_records_are_ignored(rec):
    assert events(rec) == []


def test_odd_but_usable_records():
    # no com: the reference falls back to the subscription id in ext
    rec = record(exported=False, enabled=[])
    rec["com"] = None
    assert events(rec)[0]["com"]["reference"] == SUB
    # non-string entries in the category list are skipped, not a crash
    (event,) = events(record(enabled=["Administrative", 7, None, {"x": 1}, "Alert", "Policy"]))
    assert event["com"]["finding_key"] == "Security"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"categories": "Administrative"}, "param categories must be a list of activity log categories"),
        ({"categories": []}, "param categories is empty"),
        ({"categories": ["Administrative", 3]}, "param categories: 3 is not a category name"),
        ({"categories": [" "]}, "is not a category name"),
        ({"severity": "urgent"}, "AzActivityLogDiagnosticSettingEvent param severity must be one of"),
    ],
)
def test_param_errors_name_the_plugin_and_the_param(params, message):
    with pytest.raises(ValueError, match=message) as err:
        AzActivityLogDiagnosticSettingEvent(**params)
    assert "AzActivityLogDiagnosticSettingEvent" in str(err.value)


# -- activitylog.summary: what AzMonitor puts in ext ------------------------------------------------


def setting(name, logs, **destinations):
    return {"name": name, "properties": {**destinations, "logs": logs}}


def test_summary_unions_the_categories_of_exporting_settings():
    settings = [
        setting("a", [{"category": "Administrative", "enabled": True}], workspaceId="/ws"),
        setting(
            "b",
            [{"category": "security", "enabled": True}, {"category": "Alert", "enabled": False}],
            storageAccountId="/sa",
        ),
        setting("no-destination", [{"category": "Policy", "enabled": True}]),
        setting("nothing-enabled", [{"category": "Alert", "enabled": False}], eventHubAuthorizationRuleId="/eh"),
    ]
    assert activitylog.summary(settings) == {
        "exported": True,
        "enabled_categories": ["Administrative", "Security"],
        "missing_categories": ["Alert", "Policy"],
        "destinations": [
            {"setting": "a", "type": "log_analytics_workspace", "id": "/ws"},
            {"setting": "b", "type": "storage_account", "id": "/sa"},
        ],
    }


def test_summary_all_logs_group_and_partner_destination():
    settings = [
        setting("all", [{"category": None, "categoryGroup": "allLogs", "enabled": True}], marketplacePartnerId="/p")
    ]
    summary = activitylog.summary(settings)
    assert summary["exported"] is True and summary["missing_categories"] == []
    assert summary["enabled_categories"] == sorted(activitylog.ACTIVITY_LOG_CATEGORIES)
    assert summary["destinations"] == [{"setting": "all", "type": "partner_solution", "id": "/p"}]


def test_summary_of_nothing_and_of_junk():
    empty = {
        "exported": False,
        "enabled_categories": [],
        "missing_categories": list(activitylog.CIS_CATEGORIES),
        "destinations": [],
    }
    assert activitylog.summary([]) == empty
    junk = [None, "x", {"properties": None}, {"properties": {"logs": "Administrative", "workspaceId": "/ws"}}]
    assert activitylog.summary(junk) == empty
    assert activitylog.summary([setting("s", ["Administrative", {"enabled": True}], workspaceId="/ws")]) == empty


# -- AzKV and AzMonitor params -----------------------------------------------------------------------


def test_azkv_keys_and_secrets_must_be_a_boolean():
    with pytest.raises(AzureConfigError, match="AzKV param keys_and_secrets must be true or false, not 'no'"):
        AzKV(keys_and_secrets="no")
    assert AzKV(keys_and_secrets=False)._keys_and_secrets is False


@pytest.mark.parametrize("cls", [AzKV, AzMonitor])
def test_shared_azure_params_are_checked_naming_the_plugin(cls):
    name = cls.__name__
    with pytest.raises(AzureConfigError, match=f"{name} param threads must be an integer >= 1, not 0"):
        cls(threads=0)
    with pytest.raises(AzureConfigError, match=f"{name} param _max_recs must be an integer >= 0"):
        cls(_max_recs=-1)
    with pytest.raises(AzureConfigError, match=f"{name} param secret is null"):
        cls(tenant="t", client="c")
    with pytest.raises(AzureConfigError, match=f"{name} param resource_manager_url must be an https:// URL"):
        cls(resource_manager_url="http://127.0.0.1:1")

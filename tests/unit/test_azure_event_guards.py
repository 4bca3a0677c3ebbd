"""What every Azure event shares (azure.events): the guard, the text helpers, and never failing on a hostile record."""

from __future__ import annotations

import itertools

import pytest

from airflow_cloudmarker import plugins
from airflow_cloudmarker.azure.events import friendly_list, friendly_string, guard

#: The events of the original Cloudmarker built on azure.events, with params that make every check run.
PARAMS = {"AzVMExtensionEvent": {"whitelisted": ["a"], "blacklisted": ["b"], "required": ["c"]}}
AZURE_EVENTS = [
    info.cls
    for info in plugins.builtin_plugins()
    if info.kinds == ("events",)
    and info.cls.__module__.split(".")[-1].startswith(("az", "rdbms"))
    and "disk" not in info.cls.__module__
]

RECORD_TYPES = [
    "activity_log_diagnostic_settings",
    "key_vault",
    "key_vault_key",
    "key_vault_secret",
    "log_profile",
    "log_profile_missing",
    "rdbms",
    "postgresql_server",
    "mysql_server",
    "sql_db",
    "database",
    "storage_account_properties",
    "vm_instance_view",
    "web_app_config",
]
#: Values a field may hold in a foreign or damaged record.
ODD_VALUES = [None, True, False, 0, -1, 1.5, float("nan"), "", "abc", "1.0", [], ["x", None, 3], {}, {"a": 1}]
FIELDS = [
    "enabled",
    "expiry_set",
    "recoverable",
    "subscription_locations",
    "locations",
    "retention_enabled",
    "retention_days",
    "log_retention_days",
    "connection_throttling_enabled",
    "log_checkpoints_enabled",
    "tde_enabled",
    "secure_transfer_required",
    "default_network_access_allowed",
    "trusted_services_allowed",
    "extensions",
    "https_only",
    "http20_enabled",
    "client_cert_enabled",
    "min_tls_version",
    "tls_enforced",
]


def test_the_corpus_covers_the_23_events_of_the_original_and_the_diagnostic_settings_event():
    names = {cls.__name__ for cls in AZURE_EVENTS}
    assert len(names) == 24, sorted(names)
    assert {"AzVMExtensionEvent", "RDBMSEnforceTLSEvent", "AzActivityLogDiagnosticSettingEvent"} <= names


def hostile_records():
    """Records of every type with every field set to each odd value, in ext, com and raw."""
    for record_type, value in itertools.product(RECORD_TYPES, ODD_VALUES):
        fields = dict.fromkeys(FIELDS, value)
        com = {"cloud_type": "azure", "record_type": record_type, "reference": value, **fields}
        yield {"ext": {"record_type": record_type, **fields}, "com": com, "raw": value}
        yield {"ext": {"record_type": record_type, **fields}, "com": com, "raw": {"categories": value}}
        yield {"ext": {"record_type": record_type}, "com": {**com, "cloud_type": value}}
    yield from [None, 1, "record", [], {}, {"ext": [], "com": []}, {"ext": {}, "com": {"cloud_type": ["azure"]}}]


@pytest.mark.parametrize("cls", AZURE_EVENTS, ids=lambda c: c.__name__)
def test_no_event_raises_on_a_hostile_record(cls):
    plugin = cls(**PARAMS.get(cls.__name__, {}))
    for record in hostile_records():
        for event in plugin.eval(record) or []:
            assert isinstance(event["com"]["reference"], str)
            assert "{" not in event["com"]["description"]
    plugin.done()


def test_guard_reads_missing_buckets_as_empty_and_refuses_other_shapes():
    assert guard({"com": {"cloud_type": "azure"}}) == ({}, {"cloud_type": "azure"})
    assert guard({"com": {"cloud_type": "azure"}, "ext": {"record_type": "x"}}, ext_type="x") is not None
    assert guard({"com": {"cloud_type": "azure"}}, ext_type="x") is None
    assert guard({"com": {"cloud_type": "azure", "record_type": "y"}}, com_type="y") is not None
    assert guard({"com": {"cloud_type": "gcp"}}) is None
    assert guard({}) is None and guard({}, clouds=("azure", None)) == ({}, {})
    assert guard({"com": None}) is None and guard({"com": {"cloud_type": "azure"}, "ext": None}) is None
    assert guard(["com"]) is None


@pytest.mark.parametrize(
    ("text", "friendly"),
    [
        ("azure", "Azure"),
        ("gcp", "Google Cloud Platform"),
        ("mysql_server", "MySQL Server"),
        ("postgresql_server", "PostgreSQL Server"),
        ("other", "other"),
        (None, None),
    ],
)
def test_friendly_string(text, friendly):
    assert friendly_string(text) == friendly


@pytest.mark.parametrize(
    ("items", "text"),
    [([], "none"), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b, and c"), ((1, 2), "1 and 2")],
)
def test_friendly_list(items, text):
    assert friendly_list(items) == text

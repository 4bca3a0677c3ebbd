"""The SQL database TDE event on AzSQL records and the three storage account events on AzStorageAccount records."""

from __future__ import annotations

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker.events.azsqldatabasetdeevent import AzSQLDatabaseTDEEvent
from airflow_cloudmarker.events.azstorageaccountallowtrustedservicesevent import (
    AzStorageAccountAllowTrustedServicesEvent,
)
from airflow_cloudmarker.events.azstorageaccountdefaultnetworkaccessevent import (
    AzStorageAccountDefaultNetworkAccessEvent,
)
from airflow_cloudmarker.events.azstorageaccountsecuretransferevent import AzStorageAccountSecureTransferEvent

DB = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Sql/servers/sql1/databases/db1"
ACCOUNT = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1"


def database(reference=DB, raw=None, **ext):
    """A sql_db record as AzSQL emits it; the original's test com has only cloud_type (and reference)."""
    return record("sql_db", "database", reference=reference, raw=raw, **ext)


@pytest.mark.parametrize(("ext", "count"), [({"tde_enabled": True}, 0), ({"tde_enabled": False}, 1), ({}, 1)])
def test_tde(ext, count):
    assert len(events(AzSQLDatabaseTDEEvent(), database(**ext))) == count
    no_com_type = database(**ext)
    del no_com_type["com"]["record_type"]
    assert len(events(AzSQLDatabaseTDEEvent(), no_com_type)) == count  # keyed on ext.record_type


def test_tde_event_shape_and_texts():
    source = database(tde_enabled=False)
    event = only_event(AzSQLDatabaseTDEEvent(), source)
    assert_event_shape(event, source, "sql_db_tde_event", AzSQLDatabaseTDEEvent.CHECK)
    assert event["com"]["description"] == f"Azure SQL database {DB} has transparent data encryption (TDE) disabled."
    assert "Turn on transparent data encryption" in event["com"]["recommendation"]
    assert_ignores_malformed(AzSQLDatabaseTDEEvent(), source)
    assert events(AzSQLDatabaseTDEEvent(), record("sql_server", "database", tde_enabled=False)) == []


@pytest.mark.parametrize(
    "source",
    [
        database(reference=DB.replace("/db1", "/master"), tde_enabled=False),
        database(reference=DB.replace("/db1", "/Master"), tde_enabled=False),
        database(raw={"name": "master"}, tde_enabled=False),
        database(raw={"properties": {}, "name": "MASTER"}, tde_enabled=False),
    ],
)
def test_the_master_database_is_not_reported(source):
    assert events(AzSQLDatabaseTDEEvent(), source) == []  # TDE cannot be enabled on system databases


def test_a_database_named_like_master_is_still_reported():
    assert len(events(AzSQLDatabaseTDEEvent(), database(reference=DB.replace("/db1", "/masterdata")))) == 1


STORAGE = [
    (AzStorageAccountSecureTransferEvent, "secure_transfer_required", False, "storage_account_secure_transfer_event"),
    (
        AzStorageAccountDefaultNetworkAccessEvent,
        "default_network_access_allowed",
        True,
        "storage_account_default_network_access_event",
    ),
    (
        AzStorageAccountAllowTrustedServicesEvent,
        "trusted_services_allowed",
        False,
        "storage_account_allow_trusted_services_event",
    ),
]


def account(**ext):
    """A storage_account_properties record: com has no record_type, as in the original."""
    return record("storage_account_properties", None, reference=ACCOUNT, **ext)


@pytest.mark.parametrize(("cls", "field", "bad", "event_type"), STORAGE)
def test_storage_events_fire_on_exactly_the_bad_value(cls, field, bad, event_type):
    assert len(events(cls(), account(**{field: bad}))) == 1
    assert events(cls(), account(**{field: not bad})) == []
    assert events(cls(), account()) == []  # unknown: no event
    assert events(cls(), account(**{field: None})) == []
    assert events(cls(), account(**{field: "Allow"})) == []


@pytest.mark.parametrize(("cls", "field", "bad", "event_type"), STORAGE)
def test_storage_event_shape(cls, field, bad, event_type):
    source = account(**{"secure_transfer_required": True, "trusted_services_allowed": True, field: bad})
    event = only_event(cls(), source)
    assert_event_shape(event, source, event_type, cls.CHECK)
    assert event["com"]["description"].startswith(f"Azure storage account {ACCOUNT} ")
    assert only_event(cls(severity="critical"), source)["com"]["severity"] == "critical"
    assert events(cls(), record("storage_account", None, **{field: bad})) == []  # AzCloud's listing record
    assert_ignores_malformed(cls(), source)


def test_secure_transfer_without_the_guards_the_original_lacked():
    """The original crashed on these (no guard at all); they give no event."""
    plugin = AzStorageAccountSecureTransferEvent()
    assert (
        events(plugin, {"ext": {"record_type": "storage_account_properties", "secure_transfer_required": False}}) == []
    )
    assert events(plugin, {"com": None, "ext": None}) == []
    assert events(plugin, {}) == []

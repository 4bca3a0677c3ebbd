"""The PostgreSQL server-parameter events on AzPostgres records, and RDBMSEnforceTLSEvent on rdbms records."""

from __future__ import annotations

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker.events.azpostgresconnectionthrottlingevent import AzPostgresConnectionThrottlingEvent
from airflow_cloudmarker.events.azpostgreslogcheckpointsevent import AzPostgresLogCheckpointsEvent
from airflow_cloudmarker.events.azpostgreslogconnectionsevent import AzPostgresLogConnectionsEvent
from airflow_cloudmarker.events.azpostgreslogdisconnectionsevent import AzPostgresLogDisconnectionsEvent
from airflow_cloudmarker.events.azpostgreslogdurationevent import AzPostgresLogDurationEvent
from airflow_cloudmarker.events.azpostgreslogretentiondaysevent import AzPostgresLogRetentionDaysEvent
from airflow_cloudmarker.events.rdbmsenforcetlsevent import RDBMSEnforceTLSEvent

SERVER = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"

PARAMETERS = [
    (AzPostgresConnectionThrottlingEvent, "connection_throttling_enabled", "postgres_connection_throttling_event"),
    (AzPostgresLogCheckpointsEvent, "log_checkpoints_enabled", "postgres_log_checkpoints_event"),
    (AzPostgresLogConnectionsEvent, "log_connections_enabled", "postgres_log_connections_event"),
    (AzPostgresLogDisconnectionsEvent, "log_disconnections_enabled", "postgres_log_disconnections_event"),
    (AzPostgresLogDurationEvent, "log_duration_enabled", "postgres_log_duration_event"),
]


def server(com_type="rdbms", ext_type="postgresql_server", **ext):
    return record(ext_type, com_type, reference=SERVER, **ext)


@pytest.mark.parametrize(("cls", "field", "event_type"), PARAMETERS)
@pytest.mark.parametrize(("value", "count"), [(True, 0), (False, 1), (None, 0), ("off", 0), (0, 0)])
def test_a_parameter_event_fires_only_on_exactly_false(cls, field, event_type, value, count):
    assert len(events(cls(), server(**{field: value}))) == count
    assert events(cls(), server()) == []  # the parameter was not read: nothing known


@pytest.mark.parametrize(("cls", "field", "event_type"), PARAMETERS)
def test_a_parameter_event_keys_on_both_record_types(cls, field, event_type):
    assert events(cls(), server(com_type="database", **{field: False})) == []
    assert events(cls(), server(ext_type="mysql_server", **{field: False})) == []
    assert_ignores_malformed(cls(), server(**{field: False}))


@pytest.mark.parametrize(("cls", "field", "event_type"), PARAMETERS)
def test_a_parameter_event_shape_and_texts(cls, field, event_type):
    source = server(**{field: False})
    event = only_event(cls(), source)
    assert_event_shape(event, source, event_type, cls.CHECK)
    assert event["com"]["description"].startswith(f"Azure PostgreSQL Server {SERVER} has ")
    assert event["com"]["description"].endswith(" disabled.")
    assert "to ON" in event["com"]["recommendation"]
    assert only_event(cls(severity="medium"), source)["com"]["severity"] == "medium"


def test_the_throttling_event_names_the_flexible_server_parameter():
    event = only_event(AzPostgresConnectionThrottlingEvent(), server(connection_throttling_enabled=False))
    assert event["com"]["description"] == f"Azure PostgreSQL Server {SERVER} has connection throttling disabled."
    assert event["com"]["recommendation"] == (
        f"Set the server parameter connection_throttle.enable of PostgreSQL Server {SERVER} to ON."
    )
    assert event["com"]["check_id"] == "azure_postgres_connection_throttling_off"


@pytest.mark.parametrize(
    ("days", "minimum", "count"),
    [(3, 3, 0), (2, 3, 1), (7, 3, 0), (0, 3, 1), (6, 7, 1), (2.5, 3, 1)],
)
def test_log_retention_days(days, minimum, count):
    found = events(AzPostgresLogRetentionDaysEvent(_min_log_retention_days=minimum), server(log_retention_days=days))
    assert len(found) == count


@pytest.mark.parametrize("days", [None, "2", True, [2]])
def test_log_retention_days_ignores_a_missing_or_odd_value(days):
    ext = {} if days is None else {"log_retention_days": days}
    assert events(AzPostgresLogRetentionDaysEvent(), server(**ext)) == []  # the original raised TypeError on None


def test_log_retention_days_event_shape():
    source = server(log_retention_days=1)
    event = only_event(AzPostgresLogRetentionDaysEvent(), source)
    assert_event_shape(event, source, "postgres_log_retention_days_event", AzPostgresLogRetentionDaysEvent.CHECK)
    assert event["com"]["description"] == f"Azure PostgreSQL Server {SERVER} keeps its logs for 1 day, fewer than 3."
    assert "logfiles.retention_days" in event["com"]["recommendation"]
    assert_ignores_malformed(AzPostgresLogRetentionDaysEvent(), source)
    with pytest.raises(ValueError, match="AzPostgresLogRetentionDaysEvent param _min_log_retention_days"):
        AzPostgresLogRetentionDaysEvent(_min_log_retention_days="3")


# -- RDBMSEnforceTLSEvent ------------------------------------------------------------------------


def rdbms(**com):
    """The original's test record: com only, no ext and no cloud type."""
    return {"com": {"record_type": "rdbms", "reference": SERVER, **com}}


@pytest.mark.parametrize(("com", "count"), [({"tls_enforced": True}, 0), ({}, 0), ({"tls_enforced": None}, 0)])
def test_tls_enforced_or_unknown_gives_no_event(com, count):
    assert len(events(RDBMSEnforceTLSEvent(), rdbms(**com))) == count


def test_tls_not_enforced_on_the_original_test_record():
    event = only_event(RDBMSEnforceTLSEvent(), rdbms(tls_enforced=False))
    assert event["ext"] == {"record_type": "rdbms_enforce_tls_event"}
    assert event["com"]["cloud_type"] == "azure"
    assert event["com"]["record_type"] == "rdbms_enforce_tls_event"
    assert event["com"]["description"] == f"Azure database server {SERVER} has TLS/SSL enforcement disabled."


@pytest.mark.parametrize(
    ("ext_type", "name"), [("postgresql_server", "PostgreSQL Server"), ("mysql_server", "MySQL Server")]
)
def test_tls_not_enforced_names_the_server_kind(ext_type, name):
    source = record(ext_type, "rdbms", reference=SERVER)
    source["com"]["tls_enforced"] = False
    event = only_event(RDBMSEnforceTLSEvent(), source)
    assert_event_shape(event, source, "rdbms_enforce_tls_event", RDBMSEnforceTLSEvent.CHECK)
    assert event["com"]["description"] == f"Azure {name} {SERVER} has TLS/SSL enforcement disabled."
    assert "require_secure_transport" in event["com"]["recommendation"]
    assert "tls_enforced" not in event["com"]  # only the common event fields are copied from the source com
    assert_ignores_malformed(RDBMSEnforceTLSEvent(), source, cloud_optional=True)


def test_tls_event_ignores_other_record_types_and_clouds():
    assert events(RDBMSEnforceTLSEvent(), {"com": None}) == []
    assert events(RDBMSEnforceTLSEvent(), rdbms(tls_enforced=False, record_type="compute")) == []
    assert events(RDBMSEnforceTLSEvent(), rdbms(tls_enforced=False, cloud_type="gcp")) == []
    assert events(RDBMSEnforceTLSEvent(), {"ext": {"tls_enforced": False}, "com": {"record_type": "rdbms"}}) == []

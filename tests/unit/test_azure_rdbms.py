"""The pure server-parameter mapping (airflow_cloudmarker.azure.rdbms) and AzPostgres's params, without Azure.

AzPostgres and AzCloud's MySQL servers against the local Azure server are in
tests/integration/test_azure_postgres.py and tests/integration/test_azure_plugins.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.azure import rdbms
from airflow_cloudmarker.azure.arm import AzureConfigError
from airflow_cloudmarker.clouds.azpostgres import AzPostgres

SUB = {"subscriptionId": "s-1", "displayName": "Sub one", "state": "Enabled", "tenantId": "t-1"}


def values(**parameters):
    return {name.replace("__", "."): value for name, value in parameters.items()}


def test_flexible_server_parameters_map_to_the_original_fields():
    ext = rdbms.postgres_ext(
        values(
            log_checkpoints="on",
            log_connections="ON",
            log_disconnections="off",
            log_duration="Off",
            connection_throttle__enable="on",
            logfiles__retention_days="4",
            ssl_min_protocol_version="TLSv1.3",
        )
    )
    assert ext == {
        "log_checkpoints_enabled": True,
        "log_connections_enabled": True,
        "log_disconnections_enabled": False,
        "log_duration_enabled": False,
        "connection_throttling_enabled": True,
        "log_retention_days": 4,
        "ssl_min_protocol_version": "TLSv1.3",
    }


def test_single_server_names_still_map():
    ext = rdbms.postgres_ext(values(connection_throttling="ON", log_retention_days="3"))
    assert ext == {"connection_throttling_enabled": True, "log_retention_days": 3}


def test_flexible_name_wins_over_the_single_server_name():
    ext = rdbms.postgres_ext(values(connection_throttle__enable="off", connection_throttling="on"))
    assert ext == {"connection_throttling_enabled": False}


def test_absent_parameters_give_no_field():
    assert rdbms.postgres_ext({}) == {}
    assert rdbms.postgres_ext(values(array_nulls="on")) == {}


@pytest.mark.parametrize(
    ("value", "expected"), [("on", True), (" ON ", True), ("off", False), ("", False), (None, False), ("1", False)]
)
def test_is_on_is_case_insensitive_and_strict(value, expected):
    assert rdbms.is_on(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7), (" 3 ", 3), (5, 5), ("", None), ("seven", None), (None, None), ("2.5", None)]
)
def test_integer_values(value, expected):
    assert rdbms.as_int(value) == expected


def test_unparsable_retention_is_none_not_a_crash():
    assert rdbms.postgres_ext(values(logfiles__retention_days="n/a")) == {"log_retention_days": None}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [({"require_secure_transport": "on"}, True), ({"require_secure_transport": "OFF"}, False), ({}, None)],
)
def test_tls_enforced_from_require_secure_transport(parameters, expected):
    assert rdbms.tls_enforced(parameters) is expected


def test_configuration_entry_reads_wire_and_flattened_shapes():
    wire = {
        "id": "/x/configurations/log_duration",
        "name": "log_duration",
        "properties": {"value": "on", "dataType": "Boolean", "defaultValue": "off", "source": "user-override"},
    }
    flat = {
        "name": "log_duration",
        "value": "on",
        "data_type": "Boolean",
        "default_value": "off",
        "source": "user-override",
    }
    expected = {
        "name": "log_duration",
        "value": "on",
        "data_type": "Boolean",
        "default_value": "off",
        "source": "user-override",
    }
    assert rdbms.configuration_entry(wire) == expected
    assert rdbms.configuration_entry(flat) == expected


def test_parameter_values_lower_cases_names_and_skips_nameless_entries():
    configuration = [{"name": "Log_Duration", "value": "on"}, {"name": None, "value": "x"}, "junk", {"value": "y"}]
    assert rdbms.parameter_values(configuration) == {"log_duration": "on"}


def test_server_record_shape():
    server = {
        "id": "/subscriptions/s-1/resourceGroups/rg/providers/x/pg1",
        "name": "pg1",
        "properties": {"version": "15"},
    }
    configuration = [{"name": "require_secure_transport", "value": "off"}, {"name": "log_duration", "value": "on"}]
    record = AzPostgres.server_record(server, configuration, SUB)
    assert record["raw"] == {**server, "configuration": configuration}
    assert record["ext"] == {
        "cloud_type": "azure",
        "subscription_id": "s-1",
        "subscription_name": "Sub one",
        "subscription_state": "Enabled",
        "tenant_id": "t-1",
        "record_type": "postgresql_server",
        "server_version": "15",
        "log_duration_enabled": True,
    }
    assert record["com"] == {
        "cloud_type": "azure",
        "record_type": "rdbms",
        "reference": server["id"],
        "tls_enforced": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenant": "t", "client": "c", "secret": None}, "AzPostgres param secret is null"),
        ({"threads": 0}, "AzPostgres param threads must be an integer >= 1"),
        ({"_max_recs": -2}, "AzPostgres param _max_recs"),
        ({"retry_backoff": "slow"}, "AzPostgres param retry_backoff"),
        ({"resource_manager_url": "http://insecure"}, "AzPostgres param resource_manager_url must be an https:// URL"),
    ],
)
def test_bad_params_fail_at_construction_naming_plugin_and_param(kwargs, message):
    with pytest.raises(AzureConfigError, match=message):
        AzPostgres(**kwargs)


def test_construction_keeps_the_secret_out_and_does_not_authenticate():
    cloud = AzPostgres(tenant="t", client="c", secret="s3cret-value")
    assert "s3cret-value" not in repr(cloud._settings)
    assert cloud._cred is None

"""The Azure cloud plugins without Azure: bad params fail at construction naming them; record fields from SDK models.

The plugins against the local Azure server (tests/servers/azure.py) are in tests/integration/test_azure_plugins.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker import plugins
from airflow_cloudmarker.azure.arm import AzureAuthError, AzureConfigError
from airflow_cloudmarker.clouds.azcloud import AzCloud
from airflow_cloudmarker.clouds.azdisk import AzDisk, disk_record
from airflow_cloudmarker.clouds.azsql import AzSQL, sql_db_record
from airflow_cloudmarker.clouds.azstorageaccount import AzStorageAccount, storage_account_record
from airflow_cloudmarker.clouds.azvm import AzVM
from airflow_cloudmarker.clouds.azwebapp import AzWebApp, web_app_record

AZURE_CLOUDS = (AzCloud, AzVM, AzDisk, AzStorageAccount, AzWebApp, AzSQL)


def test_null_credentials_without_fallback_name_the_params(monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    # Only the environment credential in the default chain: no managed-identity probe leaves this machine.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    with pytest.raises(AzureAuthError, match="tenant, client and secret are null"):
        AzCloud(tenant=None, client=None, secret=None).shards()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenant": "t", "client": "c", "secret": None}, "param secret is null"),
        ({"tenant": None, "client": "c", "secret": "s"}, "param tenant is null"),
        ({"threads": 0}, "threads"),
        ({"_max_subs": -1}, "_max_subs"),
        ({"_max_recs": "ten"}, "_max_recs"),
        ({"retry_backoff": -1}, "retry_backoff"),
        ({"processes": "many"}, "processes"),
        ({"resource_manager_url": "http://insecure"}, "resource_manager_url"),
    ],
)
def test_bad_params_fail_at_construction_naming_the_param(kwargs, message):
    for cls in AZURE_CLOUDS:
        with pytest.raises(AzureConfigError, match=message) as info:
            cls(**kwargs)
        assert str(info.value).startswith(f"{cls.__name__} param"), str(info.value)


@pytest.mark.parametrize("cls", AZURE_CLOUDS[2:])
def test_config_param_types_are_checked_before_construction(cls):
    errors = plugins.check_param_types(cls, {"threads": "8", "tenant": 5})
    assert {e.param for e in errors} == {"threads", "tenant"}


@pytest.mark.parametrize("cls", AZURE_CLOUDS[2:])
def test_constructing_touches_no_network_and_keeps_the_secret_out_of_repr(cls):
    cloud = cls(tenant="t", client="c", secret="s3cret-value")
    assert "s3cret-value" not in repr(cloud._settings)
    assert cloud._cred is None


# -- record fields from SDK models (built from ARM JSON, no server) --------------------------------

SUB = {"subscriptionId": "s-1", "displayName": "Sub", "state": "Enabled", "tenantId": "t-1"}


def storage_fields(properties: dict) -> tuple:
    from azure.mgmt.storage.models import StorageAccount

    account = StorageAccount({"id": "/subscriptions/s-1/x", "location": "eastus", "properties": properties})
    ext = storage_account_record(account, SUB)["ext"]
    return ext["secure_transfer_required"], ext["default_network_access_allowed"], ext["trusted_services_allowed"]


@pytest.mark.parametrize(
    ("acls", "expected"),
    [
        (None, (True, True)),  # no network rule set: Azure's default (Allow, AzureServices), not a crash
        ({}, (True, True)),
        ({"defaultAction": "Deny"}, (False, True)),  # bypass left out: Azure's default AzureServices
        ({"defaultAction": "Deny", "bypass": "AzureServices"}, (False, True)),
        ({"defaultAction": "Deny", "bypass": "AzureServices, Logging, Metrics"}, (False, True)),
        ({"defaultAction": "Deny", "bypass": "Logging,AzureServices"}, (False, True)),
        ({"defaultAction": "deny", "bypass": "azureservices"}, (False, True)),
        ({"defaultAction": "Allow", "bypass": "Logging, Metrics"}, (True, False)),
        ({"defaultAction": "Allow", "bypass": "None"}, (True, False)),
        ({"defaultAction": "Allow", "bypass": ""}, (True, False)),
    ],
)
def test_storage_account_network_fields(acls, expected):
    properties = {"supportsHttpsTrafficOnly": False}
    if acls is not None:
        properties["networkAcls"] = acls
    assert storage_fields(properties) == (False, *expected)


def test_storage_account_secure_transfer_left_out_is_unknown():
    assert storage_fields({})[0] is None


def test_web_app_fields_are_plain_values_from_site_and_configuration():
    from azure.mgmt.web.models import Site, SiteConfigResource

    site = Site(
        {"id": "/subscriptions/s-1/w", "location": "e", "kind": "functionapp", "properties": {"httpsOnly": True}}
    )
    config = SiteConfigResource({"id": "/c", "properties": {"minTlsVersion": "1.3", "http20Enabled": True}})
    record = web_app_record(site, config, SUB)
    assert {
        k: record["ext"][k] for k in ("https_only", "client_cert_enabled", "http20_enabled", "min_tls_version")
    } == {
        "https_only": True,
        "client_cert_enabled": None,
        "http20_enabled": True,
        "min_tls_version": "1.3",
    }
    assert type(record["ext"]["min_tls_version"]) is str  # the enum's value, not the enum
    assert record["raw"]["config"] == config.as_dict()


@pytest.mark.parametrize(("state", "enabled"), [("Enabled", True), ("Disabled", False), (None, False)])
def test_sql_tde_enabled_reads_the_state(state, enabled):
    from azure.mgmt.sql.models import Database, LogicalDatabaseTransparentDataEncryption

    database = Database({"id": "/subscriptions/s-1/db", "name": "db", "location": "e"})
    tde = LogicalDatabaseTransparentDataEncryption({"properties": {"state": state} if state else {}})
    record = sql_db_record(database, tde, "srv", SUB)
    assert record["ext"]["tde_enabled"] is enabled
    assert record["com"] == {"cloud_type": "azure", "record_type": "database", "reference": "/subscriptions/s-1/db"}


@pytest.mark.parametrize(("managed_by", "disk_type"), [("/vm/1", "attached"), ("", "unattached"), (None, "unattached")])
def test_disk_type_from_managed_by(managed_by, disk_type):
    from azure.mgmt.compute.models import Disk

    body = {"id": "/subscriptions/s-1/d", "location": "e", "properties": {}}
    if managed_by is not None:
        body["managedBy"] = managed_by
    record = disk_record(Disk(body), SUB)
    assert record["ext"]["disk_type"] == disk_type
    assert record["ext"]["encryption_type"] is None and record["com"]["record_type"] == "disk"

"""AzStorageAccount with the real azure-mgmt-storage client against the local ARM server
(tests/servers/azure_storage.py, after the built-in estate's account without a network rule set)."""

from __future__ import annotations

import json

import pytest
from servers import azure_storage
from support.azure_mgmt import arm_gets, estate, params, read_all

from airflow_cloudmarker import plugins
from airflow_cloudmarker.clouds.azstorageaccount import AzStorageAccount


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with estate(tmp_path, monkeypatch, azure_storage.populate) as az:
        yield az


def list_path(sid: str) -> str:
    return f"/subscriptions/{sid}/providers/microsoft.storage/storageaccounts"


#: account name (subscription 0) -> (secure_transfer_required, default_network_access_allowed, trusted_services_allowed)
EXPECTED = {
    "st0": (True, True, True),  # no networkAcls: Azure's default rule set (Allow, AzureServices)
    "st0locked": (True, False, True),
    "st0open": (False, True, False),  # bypass "None"
    "st0logs": (True, False, True),  # "AzureServices, Logging, Metrics" contains AzureServices
    "st0nosvc": (True, False, False),  # "Logging, Metrics" does not
}


def test_record_fields_for_every_network_and_transfer_setting(azure):
    records = read_all(AzStorageAccount(**params(azure)))
    assert len(records) == 10
    sid = azure.subscription_ids()[0]
    mine = {r["raw"]["name"]: r for r in records if r["ext"]["subscription_id"] == sid}
    got = {
        name: (
            r["ext"]["secure_transfer_required"],
            r["ext"]["default_network_access_allowed"],
            r["ext"]["trusted_services_allowed"],
        )
        for name, r in mine.items()
    }
    assert got == EXPECTED
    locked = mine["st0locked"]
    assert locked["ext"] == {
        "cloud_type": "azure",
        "record_type": "storage_account_properties",
        "subscription_id": sid,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "secure_transfer_required": True,
        "default_network_access_allowed": False,
        "trusted_services_allowed": True,
    }
    assert locked["com"] == {"cloud_type": "azure", "record_type": "storage_account", "reference": locked["raw"]["id"]}
    served = {a["name"]: a for a in azure_storage.accounts(sid, 0)}
    assert locked["raw"] == served["st0locked"]  # the ARM JSON as listed: properties.networkAcls etc.
    assert locked["raw"]["properties"]["networkAcls"]["bypass"] == "AzureServices"
    assert "networkAcls" not in mine["st0"]["raw"]["properties"]
    assert azure.secret not in json.dumps(records)


def test_one_list_call_per_subscription_and_no_get_properties(azure):
    read_all(AzStorageAccount(**params(azure, threads=4)))
    # 5 accounts in pages of 2: three pages per subscription; the list carries every field the checks read
    assert arm_gets(azure) == {list_path(sid): 3 for sid in azure.subscription_ids()}


def test_max_recs_limits_the_accounts_per_subscription(azure):
    records = list(AzStorageAccount(**params(azure, _max_recs=3)).read())
    assert len(records) == 6
    assert arm_gets(azure) == {list_path(sid): 2 for sid in azure.subscription_ids()}


def test_loadable_under_the_original_path():
    assert plugins.load_class("cloudmarker.clouds.azstorageaccount.AzStorageAccount") is AzStorageAccount

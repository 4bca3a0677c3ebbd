"""AzDisk with the real azure-mgmt-compute client against the local ARM server (tests/servers/azure_disks.py)."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError
from servers import azure_disks
from support.azure_mgmt import arm_gets, estate, params, read_all

from airflow_cloudmarker import plugins
from airflow_cloudmarker.clouds.azdisk import AzDisk


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with estate(tmp_path, monkeypatch, azure_disks.populate) as az:
        yield az


def list_path(sid: str) -> str:
    return f"/subscriptions/{sid}/providers/microsoft.compute/disks"


def test_one_record_per_disk_with_the_listed_disk_as_raw(azure):
    records = read_all(AzDisk(**params(azure)))
    assert len(records) == 6
    for index, sid in enumerate(azure.subscription_ids()):
        served = {d["id"]: d for d in azure_disks.disks(sid, index)}
        mine = {r["com"]["reference"]: r for r in records if r["ext"]["subscription_id"] == sid}
        assert set(mine) == set(served)
        for ref, record in mine.items():
            assert record["raw"] == served[ref]  # the ARM JSON as listed, unchanged
            assert record["com"] == {"cloud_type": "azure", "record_type": "disk", "reference": ref}
    by_name = {r["raw"]["name"]: r["ext"] for r in records}
    assert by_name["disk-0-attached"] == {
        "cloud_type": "azure",
        "record_type": "disk",
        "subscription_id": azure.subscription_ids()[0],
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "disk_type": "attached",
        "encryption_type": "EncryptionAtRestWithPlatformKey",
        "network_access_policy": "DenyAll",
    }
    spare, orphan = by_name["disk-0-spare"], by_name["disk-0-orphan"]
    assert (spare["disk_type"], spare["encryption_type"], spare["network_access_policy"]) == (
        "unattached",
        "EncryptionAtRestWithCustomerKey",
        "AllowPrivate",
    )
    # managedBy "" is unattached; a disk without an encryption block has no encryption type
    assert (orphan["disk_type"], orphan["encryption_type"], orphan["network_access_policy"]) == (
        "unattached",
        None,
        "AllowAll",
    )
    assert all(type(v) in (str, type(None)) for ext in by_name.values() for v in ext.values())  # no enums
    assert azure.secret not in json.dumps(records)


def test_one_list_call_per_subscription_and_no_per_disk_call(azure):
    read_all(AzDisk(**params(azure, threads=4)))
    gets = arm_gets(azure)
    # 3 disks in pages of 2: the list call and its nextLink page; nothing else
    assert gets == {list_path(sid): 2 for sid in azure.subscription_ids()}
    assert all(status == 200 for *_, status in azure.arm_calls())


def test_max_recs_and_max_subs_limit_the_disks_read(azure):
    records = list(AzDisk(**params(azure, _max_recs=1, _max_subs=1)).read())
    assert [r["raw"]["name"] for r in records] == ["disk-0-attached"]
    assert arm_gets(azure) == {list_path(azure.subscription_ids()[0]): 1}  # the second page is never asked for


def test_a_failing_list_fails_its_subscription_only(azure):
    bad, good = azure.subscription_ids()
    azure.fail[f"^/subscriptions/{bad}/providers/Microsoft.Compute/disks"] = 403
    cloud = AzDisk(**params(azure))
    with pytest.raises(HttpResponseError, match="AuthorizationFailed"):
        list(cloud.read(bad))
    assert len(list(cloud.read(good))) == 3


def test_loadable_under_the_original_path():
    assert plugins.load_class("cloudmarker.clouds.azdisk.AzDisk") is AzDisk

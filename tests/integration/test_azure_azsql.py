"""AzSQL with the real azure-mgmt-sql client against the local ARM server (tests/servers/azure_sql.py)."""

from __future__ import annotations

import json

import pytest
from servers import azure_sql
from support.azure_mgmt import arm_gets, estate, params, read_all

from airflow_cloudmarker import plugins
from airflow_cloudmarker.azure.arm import ItemReadError
from airflow_cloudmarker.clouds.azsql import AzSQL


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with estate(tmp_path, monkeypatch, azure_sql.populate) as az:
        yield az


def server_id(sid: str, index: int, suffix: str) -> str:
    return f"/subscriptions/{sid}/resourceGroups/rg-{index}/providers/Microsoft.Sql/servers/sql-{index}-{suffix}"


def test_one_record_per_user_database_with_its_tde_state(azure):
    records = read_all(AzSQL(**params(azure)))
    assert len(records) == 6  # 3 user databases per subscription; master is skipped
    sid = azure.subscription_ids()[0]
    mine = {r["raw"]["name"]: r for r in records if r["ext"]["subscription_id"] == sid}
    assert {name: (r["ext"]["tde_enabled"], r["ext"]["server_name"]) for name, r in mine.items()} == {
        "orders": (True, "sql-0-a"),
        "legacy": (False, "sql-0-a"),
        "reports": (True, "sql-0-b"),
    }
    orders = mine["orders"]
    db_id = server_id(sid, 0, "a") + "/databases/orders"
    assert orders["ext"] == {
        "cloud_type": "azure",
        "record_type": "sql_db",
        "subscription_id": sid,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "tde_enabled": True,
        "server_name": "sql-0-a",
    }
    assert orders["com"] == {"cloud_type": "azure", "record_type": "database", "reference": db_id}
    assert orders["raw"] == {
        **azure_sql.database(server_id(sid, 0, "a"), "orders"),
        "transparent_data_encryption": azure_sql.tde(db_id, "Enabled"),
    }
    assert azure.secret not in json.dumps(records)


def test_calls_are_one_server_list_one_database_list_per_server_and_one_tde_per_user_database(azure):
    read_all(AzSQL(**params(azure, threads=4)))
    expected = {}
    for index, sid in enumerate(azure.subscription_ids()):
        expected[f"/subscriptions/{sid}/providers/microsoft.sql/servers"] = 1
        for suffix, states in azure_sql.SERVERS.items():
            server = server_id(sid, index, suffix).lower()
            expected[f"{server}/databases"] = (len(states) + 1) // 2  # pages of 2 (nextLink)
            for name in states:
                if name != "master":
                    expected[f"{server}/databases/{name}/transparentdataencryption/current"] = 1
    assert arm_gets(azure) == expected


@pytest.mark.parametrize("status", [403, 500])
def test_a_failing_tde_call_loses_only_its_database_and_is_named(azure, status):
    sid = azure.subscription_ids()[0]
    legacy = server_id(sid, 0, "a") + "/databases/legacy"
    azure.fail[f"^{legacy}/transparentDataEncryption/current$"] = status
    records = []
    with pytest.raises(ItemReadError) as info:
        records.extend(AzSQL(**params(azure)).read(sid))
    assert sorted(r["raw"]["name"] for r in records) == ["orders", "reports"]
    assert str(info.value).startswith(f"AzSQL: 1 of 3 items could not be read ({legacy}): ")
    assert ("AuthorizationFailed" if status == 403 else "InternalServerError") in str(info.value)


def test_a_failing_database_list_names_its_server_and_keeps_the_other_servers(azure):
    sid = azure.subscription_ids()[0]
    bad = server_id(sid, 0, "b")
    azure.fail[f"^{bad}/databases$"] = 403
    records = []
    with pytest.raises(ItemReadError, match=f"could not be read \\({bad}\\)"):
        records.extend(AzSQL(**params(azure)).read(sid))
    assert sorted(r["raw"]["name"] for r in records) == ["legacy", "orders"]


def test_max_recs_counts_databases_and_lists_servers_only_as_far_as_needed(azure):
    records = list(AzSQL(**params(azure, _max_recs=2, _max_subs=1)).read())
    assert sorted(r["raw"]["name"] for r in records) == ["legacy", "orders"]
    sid = azure.subscription_ids()[0]
    assert not any("sql-0-b" in path for path in arm_gets(azure))  # the second server was not needed
    assert sid in json.dumps(records)


def test_loadable_under_the_original_path():
    assert plugins.load_class("cloudmarker.clouds.azsql.AzSQL") is AzSQL

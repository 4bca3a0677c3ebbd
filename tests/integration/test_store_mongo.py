"""MongoDBStore against the real nx-27017 MongoDB wire-protocol server, with pymongo over TCP.

A wire-level proxy (tests/servers/mongo.py) in front of it drops connections on writes and
refuses credentials on demand.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import pymongo
import pytest
from servers.mongo import MongoProxy, start_nx, stop_nx
from servers.net import free_port

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner
from airflow_cloudmarker.stores._documents import StoreAuthError, StoreError
from airflow_cloudmarker.stores.mongodbstore import MongoDBStore

TUTORIAL = """\
plugins:
  mongodbstore:
    host: 127.0.0.1
    port: {port}
    db: cloudmarker
    collection: cloudmarker
    username: null
    password: null

audits:
  mockaudit:
    stores:
      - filestore
      - mongodbstore
    alerts:
      - filestore
      - mongodbstore
"""


@pytest.fixture(scope="module")
def nx(tmp_path_factory):
    proc, port = start_nx(tmp_path_factory.mktemp("nx"))
    yield port
    stop_nx(proc)


@pytest.fixture(autouse=True, scope="module")
def _airflow_settings_first(airflow_db):
    """Airflow reads some settings once, on first import: the session's embedded settings must come first."""


@pytest.fixture
def proxy(nx):
    p = MongoProxy(nx)
    yield p
    p.close()


@pytest.fixture
def mongo(nx):
    client = pymongo.MongoClient("127.0.0.1", nx, serverSelectionTimeoutMS=5000)
    client.drop_database("cloudmarker")
    yield client
    client.close()


def records(n: int, version: str = "20260101_000000") -> list[dict]:
    return [{"raw": {"data": i}, "com": {"record_type": "mock", "audit_version": version}} for i in range(n)]


def write_all(store, items) -> None:
    for item in items:
        store.write(item)
    store.done()


def data_of(mongo, db="cloudmarker", collection="cloudmarker") -> list[int]:
    return sorted(d["raw"]["data"] for d in mongo[db][collection].find())


# --- plugin level -------------------------------------------------------------------------------


def test_upserts_in_batches_without_touching_the_records_and_a_rewrite_does_not_duplicate(nx, mongo):
    items = records(25)
    before = copy.deepcopy(items)
    store = MongoDBStore(host="127.0.0.1", port=nx, buffer_size=10)
    write_all(store, items)
    assert items == before  # no _id added to the caller's dicts
    assert store.requests == 3
    write_all(MongoDBStore(host="127.0.0.1", port=nx), records(25))  # a retried task: same ids
    assert data_of(mongo) == list(range(25))
    write_all(MongoDBStore(host="127.0.0.1", port=nx), records(5, version="20260102_000000"))  # another run
    assert mongo.cloudmarker.cloudmarker.count_documents({}) == 30


def test_connection_dropped_half_way_fails_with_a_count_and_a_retry_writes_each_record_once(proxy, mongo):
    proxy.drop_writes_after(2)  # two bulk writes pass, then every write loses its connection
    with pytest.raises(StoreError) as info:
        write_all(MongoDBStore(host="127.0.0.1", port=proxy.port, buffer_size=10), records(45))
    message = str(info.value)
    assert f"MongoDBStore -> MongoDB 127.0.0.1:{proxy.port} cloudmarker.cloudmarker" in message
    assert "10 of 30 records were not written; connection lost 3 times" in message
    assert data_of(mongo) == list(range(20))
    proxy.heal()
    write_all(MongoDBStore(host="127.0.0.1", port=proxy.port, buffer_size=10), records(45))
    assert data_of(mongo) == list(range(45))


def test_one_dropped_connection_is_retried(proxy, mongo):
    proxy.drop_writes_after(0, times=1)
    write_all(MongoDBStore(host="127.0.0.1", port=proxy.port), records(5))
    assert data_of(mongo) == list(range(5))


def test_server_down_is_one_clear_error():
    port = free_port()
    with pytest.raises(StoreError, match=rf"MongoDB 127.0.0.1:{port} .*1 of 1 records were not written; cannot reach"):
        write_all(MongoDBStore(host="127.0.0.1", port=port), records(1))


def test_wrong_credentials_are_one_authentication_error(proxy):
    proxy.reject_auth = True
    with pytest.raises(StoreAuthError) as info:
        write_all(MongoDBStore(host="127.0.0.1", port=proxy.port, username="cm", password="hunter2"), records(2))
    assert "refused the credentials (Authentication failed.)" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_connection_id_through_mongohook(nx, mongo, monkeypatch):
    conn = {"conn_type": "mongo", "host": "127.0.0.1", "port": nx, "schema": "cmdb"}
    monkeypatch.setenv("AIRFLOW_CONN_CM_MONGO", json.dumps(conn))
    store = MongoDBStore(conn_id="cm_mongo", collection="records")  # constructing it connects nothing
    write_all(store, records(3))
    assert data_of(mongo, "cmdb", "records") == [0, 1, 2]
    mongo.drop_database("cmdb")


# --- end to end through runner.run_now ------------------------------------------------------------


def run_tutorial(home, port: int, extra: str = ""):
    text = TUTORIAL.format(port=port).replace("    password: null\n", "    password: null\n" + extra)
    (home.parent / "work" / "cloudmarker.yaml").write_text(text)
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    return result


def check_tutorial_expectations(mongo) -> None:
    documents = list(mongo.cloudmarker.cloudmarker.find())
    assert len({d["com"]["audit_version"] for d in documents}) == 1
    assert Counter(d["com"]["record_type"] for d in documents) == {"mock": 10, "mock_event": 4}
    assert sorted(d["raw"]["data"] for d in documents if d["com"]["record_type"] == "mock") == list(range(10))
    assert all(d["com"]["description"] for d in documents if d["com"]["record_type"] == "mock_event")


def test_tutorial_config_end_to_end(airflow_db, out_dir, home, nx, mongo):
    assert run_tutorial(home, nx).state == "success"
    check_tutorial_expectations(mongo)


def test_server_down_fails_its_tasks_loses_nothing_else_and_a_rerun_succeeds(
    airflow_db, out_dir, home, nx, mongo, capfd
):
    port = free_port()
    result = run_tutorial(home, port)
    assert result.state == "failed" and result.failed_tasks == ["alert_mongodbstore", "store_mongodbstore"]
    assert len(json.loads((out_dir / "mockaudit_mockcloud.json").read_text())) == 10
    assert len(json.loads((out_dir / "mockaudit_mockevent.json").read_text())) == 4
    assert (
        f"MongoDBStore -> MongoDB 127.0.0.1:{port} cloudmarker.cloudmarker: 10 of 10 records" in capfd.readouterr().out
    )
    assert run_tutorial(home, nx).state == "success"  # the server is up now (same config, its port)
    check_tutorial_expectations(mongo)


def test_failing_half_way_then_the_task_retry_writes_each_record_once(
    airflow_db, out_dir, home, proxy, mongo, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__TASK_RETRIES", "1")
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__RETRY_DELAY_SECONDS", "0")
    proxy.drop_writes_after(1, times=3)  # the 2nd bulk write loses its connection through the store's retries
    result = run_tutorial(home, proxy.port, "    buffer_size: 3\n")
    assert result.state == "success", result
    check_tutorial_expectations(mongo)
    assert proxy.writes > 14 // 3 + 2  # resent batches


def test_wrong_credentials_fail_the_task_with_one_clear_error(airflow_db, out_dir, home, proxy, capfd):
    proxy.reject_auth = True
    text = TUTORIAL.replace("username: null", "username: cm").replace("password: null", "password: pa55word")
    (home.parent / "work" / "cloudmarker.yaml").write_text(text.format(port=proxy.port))
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    assert result.state == "failed" and result.failed_tasks == ["alert_mongodbstore", "store_mongodbstore"]
    out = capfd.readouterr().out
    assert "the server refused the credentials (Authentication failed.)" in out
    assert "pa55word" not in out

"""EsStore against a local server speaking the documented ``_bulk`` API, with the real elasticsearch client.

Plugin-level tests are fast and pure; a few end-to-end runs go through ``runner.run_now`` (what
``cloudmarker -n`` calls) with the tutorial's "more elaborate" config, adapted only in host/port.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from servers.elasticsearch import EsServer
from servers.net import free_port
from support.cli import run_cli_as_user, user_config

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner
from airflow_cloudmarker.stores._documents import StoreAuthError, StoreError
from airflow_cloudmarker.stores.esstore import EsStore

TUTORIAL = """\
plugins:
  esstore:
    host: 127.0.0.1
    port: {port}
    index: cloudmarker

audits:
  mockaudit:
    stores:
      - filestore
      - esstore
    alerts:
      - filestore
      - esstore
"""


def records(n: int, version: str = "20260101_000000") -> list[dict]:
    return [
        {
            "raw": {"data": i},
            "ext": {"cloud_type": "mock", "record_type": "foo"},
            "com": {"cloud_type": "mock", "record_type": "mock", "audit_key": "a", "audit_version": version},
        }
        for i in range(n)
    ]


def write_all(store: EsStore, items: list[dict]) -> None:
    for item in items:
        store.write(item)
    store.done()


@pytest.fixture(autouse=True, scope="module")
def _airflow_settings_first(airflow_db):
    """Airflow reads some settings once, on first import: the session's embedded settings must come first
    (the hooks used here import Airflow)."""


# --- plugin level -------------------------------------------------------------------------------


def test_buffer_size_bytes_decides_the_number_of_bulk_requests_and_records_are_not_mutated():
    items = records(50)
    before = copy.deepcopy(items)
    with EsServer() as server:
        write_all(EsStore(host="127.0.0.1", port=server.port, buffer_size=2_000), items)
        assert sorted(d["raw"]["data"] for d in server.sources()) == list(range(50))
        assert server.bulk_requests > 3  # ~200 bytes per action: several requests of <= 2,000 bytes
        requests = server.bulk_requests
        write_all(EsStore(host="127.0.0.1", port=server.port), records(50))  # default 5 MB: one request
        assert server.bulk_requests == requests + 1
    assert items == before


def test_writing_the_same_run_twice_overwrites_and_another_run_adds():
    with EsServer() as server:
        for _ in range(2):
            write_all(EsStore(host="127.0.0.1", port=server.port, index="cm"), records(20))
        assert len(server.docs["cm"]) == 20 and server.items_received == 40
        write_all(EsStore(host="127.0.0.1", port=server.port, index="cm"), records(20, version="20260102_000000"))
        assert len(server.docs["cm"]) == 40


def test_rejected_items_fail_with_a_count_and_a_retry_delivers_each_record_once():
    with EsServer() as server:
        server.fail("items", after=2)  # two bulk requests pass, then every item is rejected with 429
        store = EsStore(host="127.0.0.1", port=server.port, buffer_size=1_500)
        with pytest.raises(StoreError) as info:
            write_all(store, records(40))
        message = str(info.value)
        assert f"EsStore -> Elasticsearch http://127.0.0.1:{server.port}/ index 'cloudmarker'" in message
        assert "were not written" in message and "429 es_rejected_execution_exception" in message
        assert 0 < len(server.sources()) < 40
        server.heal()
        write_all(EsStore(host="127.0.0.1", port=server.port, buffer_size=1_500), records(40))
        assert sorted(d["raw"]["data"] for d in server.sources()) == list(range(40))


@pytest.mark.parametrize("mode", ["drop", "503"])
def test_connection_dropped_or_5xx_after_the_transport_retries_is_one_clear_error(mode):
    with EsServer() as server:
        server.fail(mode)
        with pytest.raises(StoreError, match=r"1 of 1 records were not written; bulk request failed"):
            write_all(EsStore(host="127.0.0.1", port=server.port), records(1))
        assert server.bulk_requests > 1  # the client retried before giving up


def test_a_single_transient_failure_is_absorbed_by_the_retries():
    with EsServer() as server:
        server.fail("503", times=1)
        write_all(EsStore(host="127.0.0.1", port=server.port), records(5))
        assert len(server.sources()) == 5


def test_server_down_names_the_server():
    port = free_port()
    with pytest.raises(StoreError, match=rf"127.0.0.1:{port}/.*1 of 1 records were not written.*Connection refused"):
        write_all(EsStore(host="127.0.0.1", port=port), records(1))


def test_connection_id_with_credentials_and_wrong_credentials(monkeypatch):
    with EsServer(credentials=("cm", "s3cret")) as server:
        conn = {"conn_type": "elasticsearch", "host": "127.0.0.1", "port": server.port, "login": "cm"}
        monkeypatch.setenv("AIRFLOW_CONN_CM_ES", json.dumps({**conn, "password": "s3cret"}))
        monkeypatch.setenv("AIRFLOW_CONN_CM_ES_BAD", json.dumps({**conn, "password": "wrong"}))
        write_all(EsStore(conn_id="cm_es", index="cm"), records(3))
        assert len(server.docs["cm"]) == 3
        with pytest.raises(StoreAuthError) as info:
            write_all(EsStore(conn_id="cm_es_bad"), records(3))
        assert "refused the credentials (HTTP 401)" in str(info.value)
        assert "connection 'cm_es_bad'" in str(info.value) and "wrong" not in str(info.value)


@pytest.mark.parametrize("major", [8, 9])
def test_the_server_is_asked_its_version_once_per_store_and_gets_its_own_compatible_with(major):
    """No setting: one ``GET /`` per store instance (not per batch), then every bulk request speaks the
    server's major (an 8.x server refuses the 9.x client's default ``compatible-with=9``)."""
    with EsServer(major=major) as server:
        write_all(EsStore(host="127.0.0.1", port=server.port, buffer_size=2_000), records(50))
        assert sorted(d["raw"]["data"] for d in server.sources()) == list(range(50))
        assert server.refused_media_types == []
        assert server.info_requests == 1 and server.bulk_requests > 3
        assert server.compatible_with == [("GET", None)] + [("PUT", major)] * server.bulk_requests
        write_all(EsStore(host="127.0.0.1", port=server.port), records(5))
        assert server.info_requests == 2


def test_elasticsearch_7_is_refused_in_one_line_naming_its_version_and_what_is_supported():
    with EsServer(major=7) as server:
        with pytest.raises(StoreError) as info:
            write_all(EsStore(host="127.0.0.1", port=server.port), records(3))
        assert server.bulk_requests == 0
    message = str(info.value)
    assert message == (
        f"EsStore -> Elasticsearch http://127.0.0.1:{server.port}/ index 'cloudmarker': 3 of 3 records were not "
        "written; the server runs Elasticsearch 7.17.28, EsStore supports Elasticsearch 8.x and 9.x: "
        "upgrade the server"
    )
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_an_explicit_es_compat_with_is_honoured_without_asking_the_server(monkeypatch):
    with EsServer(major=8) as server:
        monkeypatch.setenv("AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH", "8")
        write_all(EsStore(host="127.0.0.1", port=server.port), records(2))
        assert len(server.sources()) == 2 and server.info_requests == 0
        monkeypatch.setenv("AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH", "9")  # wrong for this server: the user's call
        with pytest.raises(StoreError, match=r"HTTP 400 media_type_header_exception.*es_compat_with = 9.*unset it"):
            write_all(EsStore(host="127.0.0.1", port=server.port), records(2))
        assert server.info_requests == 0


def test_a_user_who_may_not_read_the_version_still_writes_with_plain_json(caplog):
    """Writer-only credentials (no ``monitor`` privilege) get 403 on ``GET /``: no compatible-with at all,
    which every Elasticsearch major accepts as its own current API."""
    with EsServer(major=8, info_forbidden=True) as server:
        write_all(EsStore(host="127.0.0.1", port=server.port), records(4))
        assert len(server.sources()) == 4
        assert server.compatible_with == [("GET", None), ("PUT", None)]
    assert "may not read the server version (HTTP 403 on GET /" in caplog.text


# --- end to end through runner.run_now ------------------------------------------------------------


def run_tutorial(home, port: int, extra: str = ""):
    """The tutorial's config with ``extra`` lines added to the esstore plugin's keys."""
    text = TUTORIAL.format(port=port).replace("    index: cloudmarker\n", "    index: cloudmarker\n" + extra)
    (home.parent / "work" / "cloudmarker.yaml").write_text(text)
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    return result


def file_count(out_dir, name: str) -> int:
    return len(json.loads((out_dir / name).read_text()))


def check_tutorial_expectations(sources: list[dict]) -> None:
    """What the tutorial's searches find: 10 mock records and 4 mock events with a description, once each."""
    versions = {d["com"]["audit_version"] for d in sources}
    assert len(versions) == 1
    types = Counter(d["com"]["record_type"] for d in sources)
    assert types == {"mock": 10, "mock_event": 4}
    assert sorted(d["raw"]["data"] for d in sources if d["com"]["record_type"] == "mock") == list(range(10))
    events = [d for d in sources if d["com"]["record_type"] == "mock_event"]
    assert all(d["com"]["description"] and d["com"]["target_type"] == "alert" for d in events)
    assert {d["com"]["target_key"] for d in sources} == {"esstore"}


def test_tutorial_config_end_to_end(airflow_db, out_dir, home):
    with EsServer() as server:
        result = run_tutorial(home, server.port)
    assert result.state == "success", result
    check_tutorial_expectations(server.sources())
    assert file_count(out_dir, "mockaudit_mockcloud.json") == 10


def test_server_down_fails_its_tasks_loses_nothing_else_and_a_rerun_succeeds(airflow_db, out_dir, home, capfd):
    port = free_port()
    result = run_tutorial(home, port)
    assert result.state == "failed"
    assert result.failed_tasks == ["alert_esstore", "store_esstore"]
    assert file_count(out_dir, "mockaudit_mockcloud.json") == 10
    assert file_count(out_dir, "mockaudit_mockevent.json") == 4
    log_text = capfd.readouterr().out  # the task logs
    assert (
        f"EsStore -> Elasticsearch http://127.0.0.1:{port}/ index 'cloudmarker': 10 of 10 records were not written"
        in (log_text)
    )
    with EsServer(port=port) as server:
        assert run_tutorial(home, port).state == "success"
    check_tutorial_expectations(server.sources())


def test_failing_half_way_then_the_task_retry_writes_each_record_exactly_once(airflow_db, out_dir, home, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__TASK_RETRIES", "1")
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__RETRY_DELAY_SECONDS", "0")
    with EsServer() as server:
        # Small requests (about 3 records each); the connection drops from the 2nd request on,
        # through all of the client's retries, then the server recovers.
        server.fail("drop", after=1, times=4)
        result = run_tutorial(home, server.port, "    buffer_size: 1500\n")
    assert result.state == "success", result
    check_tutorial_expectations(server.sources())
    assert server.items_received > 14  # the retried task resent what had already arrived


def test_wrong_credentials_fail_the_task_with_one_clear_error(airflow_db, out_dir, home, capfd, monkeypatch):
    with EsServer(credentials=("cm", "right-password")) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CM_ES",
            json.dumps(
                {
                    "conn_type": "elasticsearch",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "login": "cm",
                    "password": "pw9",
                }
            ),
        )
        result = run_tutorial(home, server.port, "    conn_id: cm_es\n")
    assert result.state == "failed" and result.failed_tasks == ["alert_esstore", "store_esstore"]
    assert server.sources() == []
    log_text = capfd.readouterr().out
    assert "the server refused the credentials (HTTP 401)" in log_text
    assert "pw9" not in log_text
    assert file_count(out_dir, "mockaudit_mockevent.json") == 4


# --- end to end through the cloudmarker command, as a new user runs it --------------------------------

USER_CONFIG = """\
plugins:
  esstore:
    plugin: cloudmarker.stores.esstore.EsStore
    params:
      {where}
      index: cloudmarker
audits:
  mockaudit:
    stores: [filestore, esstore]
    alerts: [filestore, esstore]
"""


def files_containing(root, secret: str) -> list[str]:
    """Every file under ``root`` whose bytes contain ``secret`` (logs, the metadata DB, XCom files, ...)."""
    return [str(path) for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]


def test_cli_elasticsearch_8_with_credentials_works_on_a_fresh_home(user_home, tmp_path):
    """The issue's case: a fresh HOME, no es_compat_with, an 8.x server with basic auth (the documented
    Airflow connection); the password is never printed nor written under HOME."""
    secret = "Es8-s3cret-pw-41"
    with EsServer(major=8, credentials=("cloudmarker", secret)) as server:
        out = user_config(user_home, tmp_path, USER_CONFIG.format(where="conn_id: cm_es"))
        connection = {"conn_type": "elasticsearch", "host": "127.0.0.1", "port": server.port}
        connection.update(login="cloudmarker", password=secret)
        result = run_cli_as_user("-n", home=user_home, env={"AIRFLOW_CONN_CM_ES": json.dumps(connection)})
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    check_tutorial_expectations(server.sources())
    assert server.refused_media_types == []
    assert server.info_requests == 2  # one per store task (records and events), not one per bulk request
    assert {version for method, version in server.compatible_with if method == "PUT"} == {8}
    assert file_count(out, "mockaudit_mockcloud.json") == 10
    assert secret not in console
    assert files_containing(user_home, secret) == [] and files_containing(tmp_path / "out", secret) == []
    assert secret not in (tmp_path / "cloudmarker.log").read_text()


def test_cli_elasticsearch_7_fails_the_store_tasks_with_one_clear_line(user_home, tmp_path):
    with EsServer(major=7) as server:
        out = user_config(user_home, tmp_path, USER_CONFIG.format(where=f"host: 127.0.0.1\n      port: {server.port}"))
        result = run_cli_as_user("-n", home=user_home)
    console = result.stdout + result.stderr
    assert result.returncode == 1, console[-3000:]
    assert server.bulk_requests == 0 and server.sources() == []
    line = (
        f"EsStore -> Elasticsearch http://127.0.0.1:{server.port}/ index 'cloudmarker': 10 of 10 records were not "
        "written; the server runs Elasticsearch 7.17.28, EsStore supports Elasticsearch 8.x and 9.x: upgrade the server"
    )
    assert f"deliver of plugin esstore (cloudmarker.stores.esstore.EsStore) failed: StoreError: {line}" in console
    assert "failed tasks: alert_esstore, store_esstore" in console
    # Our error, not the client's: no elasticsearch frames and no chained "during handling" tracebacks.
    assert "elasticsearch/_sync" not in console and "During handling of the above exception" not in console
    assert file_count(out, "mockaudit_mockcloud.json") == 10  # the other stores lose nothing

"""SplunkHECStore against a local HTTPS HEC endpoint (tests/servers/splunk.py), through requests and the hook."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from servers.net import free_port
from servers.splunk import HecServer

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner
from airflow_cloudmarker.stores._documents import StoreAuthError, StoreError
from airflow_cloudmarker.stores.splunkhecstore import SplunkHECStore

TUTORIAL = """\
plugins:
  splunkstore:
    plugin: cloudmarker.stores.splunkhecstore.SplunkHECStore
    params:
      uri: https://localhost:{port}/services/collector
      token: token123
      index: main
      ca_cert: false

audits:
  mockaudit:
    stores:
      - filestore
      - splunkstore
"""


def records(n: int) -> list[dict]:
    return [{"raw": {"data": i}, "com": {"record_type": "mock", "audit_version": "20260101_000000"}} for i in range(n)]


def write_all(store, items) -> None:
    for item in items:
        store.write(item)
    store.done()


def store_for(server: HecServer, **params) -> SplunkHECStore:
    params = {"uri": f"https://localhost:{server.port}/services/collector", "token": "token123", **params}
    return SplunkHECStore(**{"index": "main", "ca_cert": False, **params})


@pytest.fixture(autouse=True, scope="module")
def _airflow_settings_first(airflow_db):
    """Airflow reads some settings once, on first import: the session's embedded settings must come first
    (the hooks used here import Airflow)."""


# --- plugin level -------------------------------------------------------------------------------


def test_batches_of_buffer_size_records_in_the_documented_event_format(tmp_path):
    with HecServer() as server:
        write_all(store_for(server, buffer_size=4, ca_cert=server.write_ca(tmp_path / "ca.pem")), records(10))
    assert server.requests == 3  # 4 + 4 + 2
    assert server.events[0] == {"index": "main", "sourcetype": "json", "event": records(1)[0]}
    assert [r["raw"]["data"] for r in server.records()] == list(range(10))


def test_certificate_verification_is_on_by_default():
    with HecServer() as server:
        with pytest.raises(StoreError, match=r"SplunkHECStore -> Splunk HEC https://localhost.*CERTIFICATE_VERIFY"):
            write_all(store_for(server, ca_cert=True), records(1))
        assert server.events == []


def test_busy_server_is_retried_then_a_persistent_503_fails_with_the_count():
    with HecServer() as server:
        server.fail("503", times=2)  # absorbed by the retries
        write_all(store_for(server), records(3))
        assert len(server.events) == 3
        server.fail("503", after=1)  # the 2nd batch onwards: busy for good
        with pytest.raises(StoreError) as info:
            write_all(store_for(server, buffer_size=5), records(12))
        assert "5 of 10 records were not written; HTTP 503, HEC code 9: Server is busy" in str(info.value)
        assert len(server.events) == 3 + 5


def test_dropped_connection_fails_and_a_rerun_delivers_at_least_once():
    with HecServer() as server:
        server.fail("drop", after=1)
        with pytest.raises(StoreError, match="5 of 10 records were not written; request failed after 3 retries"):
            write_all(store_for(server, buffer_size=5), records(12))
        server.heal()
        write_all(store_for(server, buffer_size=5), records(12))
        counts = Counter(r["raw"]["data"] for r in server.records())
        assert set(counts) == set(range(12)) and counts[0] == 2 and counts[11] == 1  # at least once


@pytest.mark.parametrize(("token", "status"), [("wrong", "HTTP 403, HEC code 4: Invalid token")])
def test_wrong_token_is_one_authentication_error(token, status):
    with HecServer() as server, pytest.raises(StoreAuthError) as info:
        write_all(store_for(server, token=token), records(2))
    assert status in str(info.value) and "fix the token param" in str(info.value)
    assert server.requests == 0 and server.events == []


def test_connection_id_holds_uri_token_index_and_ca(monkeypatch, tmp_path):
    with HecServer(token="t0k") as server:
        extra = {"index": "security", "ca_cert": server.write_ca(tmp_path / "ca.pem")}
        conn = {"conn_type": "splunk_hec", "host": "localhost", "port": server.port, "schema": "https"}
        monkeypatch.setenv("AIRFLOW_CONN_CM_HEC", json.dumps({**conn, "password": "t0k", "extra": extra}))
        write_all(SplunkHECStore(conn_id="cm_hec"), records(2))
    assert [e["index"] for e in server.events] == ["security", "security"]


# --- end to end through runner.run_now ------------------------------------------------------------


def run_config(home, text: str):
    (home.parent / "work" / "cloudmarker.yaml").write_text(text)
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    return result


def test_tutorial_config_end_to_end(airflow_db, out_dir, home):
    with HecServer() as server:
        result = run_config(home, TUTORIAL.format(port=server.port))
    assert result.state == "success", result
    # index=main com.record_type=mock: 10 records
    assert [r["raw"]["data"] for r in server.records() if r["com"]["record_type"] == "mock"] == list(range(10))
    assert {e["index"] for e in server.events} == {"main"} and {e["sourcetype"] for e in server.events} == {"json"}


def test_tutorial_searches_find_the_events_when_splunkstore_is_also_an_alert(airflow_db, out_dir, home):
    """The tutorial's mock_event searches: events reach a store plugin listed under alerts."""
    text = TUTORIAL + "    alerts:\n      - filestore\n      - splunkstore\n"
    with HecServer() as server:
        assert run_config(home, text.format(port=server.port)).state == "success"
    types = Counter(r["com"]["record_type"] for r in server.records())
    assert types == {"mock": 10, "mock_event": 4}
    # index=main com.record_type=mock_event | table com.description
    assert all(r["com"]["description"] for r in server.records() if r["com"]["record_type"] == "mock_event")


def test_server_down_fails_the_task_keeps_filestore_and_a_rerun_succeeds(airflow_db, out_dir, home, capfd):
    port = free_port()
    result = run_config(home, TUTORIAL.format(port=port))
    assert result.state == "failed" and result.failed_tasks == ["store_splunkstore"]
    assert len(json.loads((out_dir / "mockaudit_mockcloud.json").read_text())) == 10
    out = capfd.readouterr().out
    assert f"SplunkHECStore -> Splunk HEC https://localhost:{port}/services/collector: 10 of 10 records" in out
    assert "token123" not in out
    with HecServer(port=port) as server:
        assert run_config(home, TUTORIAL.format(port=port)).state == "success"
    assert len(server.records()) == 10


def test_wrong_token_fails_the_task_with_one_clear_error(airflow_db, out_dir, home, capfd):
    with HecServer(token="another-token") as server:
        result = run_config(home, TUTORIAL.format(port=server.port))
    assert result.state == "failed" and result.failed_tasks == ["store_splunkstore"]
    assert "HEC refused the token (HTTP 403, HEC code 4: Invalid token)" in capfd.readouterr().out

"""AzPostgres with the real azure-identity / azure-mgmt-postgresqlflexibleservers clients against the local
HTTPS server, filled with the flexible-server estate of ``servers.azure_rdbms``.

No Airflow DAG here: the plugin is called as the fetch tasks call it (``shards()``, ``read(shard)``).
"""

from __future__ import annotations

import json

import pytest
from servers import azure_rdbms
from servers.azure import FakeAzure
from servers.azure import plugin_params as params

from airflow_cloudmarker.azure.arm import ItemReadError
from airflow_cloudmarker.clouds.azpostgres import AzPostgres

PAGE_SIZE = 3


@pytest.fixture
def azure(tmp_path, monkeypatch):
    """A fresh server (2 subscriptions, pages of 3 items) with the database estate, whose CA the SDKs trust."""
    with FakeAzure(tmp_path / "ca", subscriptions=2, vms=1, page_size=PAGE_SIZE) as az:
        azure_rdbms.populate(az)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield az


def read_all(az, **extra):
    cloud = AzPostgres(**params(az, **extra))
    records = [r for shard in cloud.shards() for r in cloud.read(shard)]
    cloud.done()
    return {r["raw"]["name"]: r for r in records}


def calls_to(az, path):
    return sum(n for (method, p), n in az.counts().items() if method == "GET" and p.lower() == path.lower())


def test_one_record_per_flexible_server_with_the_original_fields(azure):
    records = read_all(azure)
    assert sorted(records) == sorted(f"pg-{i}-{kind}" for i in range(2) for kind in ("healthy", "unhealthy", "partial"))
    healthy = records["pg-0-healthy"]
    sid = azure_rdbms.subscription_id(0)
    assert healthy["ext"] == {
        "cloud_type": "azure",
        "record_type": "postgresql_server",
        "subscription_id": sid,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "server_version": "16",
        "log_checkpoints_enabled": True,
        "log_connections_enabled": True,  # the server says "ON"
        "log_disconnections_enabled": True,
        "log_duration_enabled": True,
        "connection_throttling_enabled": True,
        "log_retention_days": 7,
        "ssl_min_protocol_version": "TLSv1.2",
    }
    assert healthy["com"] == {
        "cloud_type": "azure",
        "record_type": "rdbms",
        "reference": azure_rdbms.server_id(0, azure_rdbms.PG, "pg-0-healthy"),
        "tls_enforced": True,
    }


def test_unhealthy_server_maps_off_values_to_false(azure):
    unhealthy = read_all(azure)["pg-1-unhealthy"]
    ext = unhealthy["ext"]
    assert [ext[f] for f in ("log_checkpoints_enabled", "log_connections_enabled", "log_disconnections_enabled")] == [
        False,
        False,
        False,
    ]
    assert ext["log_duration_enabled"] is False  # "OFF"
    assert ext["connection_throttling_enabled"] is False
    assert ext["log_retention_days"] == 1
    assert "ssl_min_protocol_version" in ext  # the default value, TLSv1.2
    assert unhealthy["com"]["tls_enforced"] is False  # the original's bug made this False for every server
    assert unhealthy["ext"]["subscription_id"] == azure_rdbms.subscription_id(1)


def test_missing_parameters_give_no_field_and_unknown_tls(azure):
    partial = read_all(azure)["pg-0-partial"]
    assert "connection_throttling_enabled" not in partial["ext"]
    assert "log_retention_days" not in partial["ext"]
    assert partial["ext"]["log_duration_enabled"] is False
    assert partial["ext"]["log_checkpoints_enabled"] is True  # the default, on
    assert partial["com"]["tls_enforced"] is None  # absent: RDBMSEnforceTLSEvent reports nothing


def test_raw_is_the_server_with_every_parameter(azure):
    healthy = read_all(azure)["pg-0-healthy"]
    raw = healthy["raw"]
    assert raw["properties"]["fullyQualifiedDomainName"] == "pg-0-healthy.postgres.database.azure.com"
    assert raw["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
    names = [c["name"] for c in raw["configuration"]]
    assert names == list(azure_rdbms.PG_PARAMETERS)  # all 10, across 4 pages of 3
    throttle = next(c for c in raw["configuration"] if c["name"] == "connection_throttle.enable")
    assert throttle == {
        "name": "connection_throttle.enable",
        "value": "ON",
        "data_type": "Boolean",
        "default_value": "on",
        "source": "user-override",
    }
    assert azure.secret not in json.dumps(raw)


def test_calls_one_list_per_subscription_and_one_paged_configurations_list_per_server(azure):
    read_all(azure, threads=4)
    for index, sid in enumerate(azure.subscription_ids()):
        assert calls_to(azure, f"/subscriptions/{sid}/providers/{azure_rdbms.PG}") == 1
        for kind, parameters in (("healthy", 10), ("unhealthy", 10), ("partial", 7)):
            path = azure_rdbms.server_id(index, azure_rdbms.PG, f"pg-{index}-{kind}") + "/configurations"
            pages = -(-parameters // PAGE_SIZE)  # one list call, continued through nextLink
            assert calls_to(azure, path) == pages, (path, pages)
    # Nothing else: shards() lists the subscriptions (1), each read(shard) gets its subscription (2),
    # lists its servers (2) and pages through each server's parameters (4 + 4 + 3 per subscription).
    assert len(azure.arm_calls()) == 1 + 2 + 2 + 2 * (4 + 4 + 3)


def test_max_recs_caps_servers_per_subscription(azure):
    records = read_all(azure, _max_recs=1)
    assert sorted(records) == ["pg-0-healthy", "pg-1-healthy"]
    unread = azure_rdbms.server_id(0, azure_rdbms.PG, "pg-0-partial") + "/configurations"
    assert calls_to(azure, unread) == 0


def test_failing_configurations_call_names_the_server_and_keeps_the_others(azure):
    bad = azure_rdbms.server_id(0, azure_rdbms.PG, "pg-0-unhealthy")
    azure.fail[f"^{bad}/configurations$"] = 403
    cloud = AzPostgres(**params(azure))
    shard = azure_rdbms.subscription_id(0)
    records = []
    with pytest.raises(ItemReadError) as info:
        records.extend(cloud.read(shard))
    message = str(info.value)
    assert message.startswith("AzPostgres: 1 of 3 items could not be read (")
    assert bad in message and "AuthorizationFailed" in message
    assert sorted(r["raw"]["name"] for r in records) == ["pg-0-healthy", "pg-0-partial"]
    assert calls_to(azure, f"{bad}/configurations") == 1  # a 403 is not retried
    assert len(list(cloud.read(azure_rdbms.subscription_id(1)))) == 3  # the other subscription is unaffected


def test_unsharded_read_reads_every_subscription(azure):
    records = list(AzPostgres(**params(azure, threads=3)).read())
    assert len(records) == 6
    assert {r["ext"]["subscription_id"] for r in records} == set(azure.subscription_ids())


AUDIT = """\
plugins:
  azpostgres:
    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
      retry_backoff: 0

audits:
  mypgaudit:
    clouds:
      - azpostgres
    stores:
      - filestore
    alerts:
      - filestore

run:
  - mypgaudit
"""


def run_audit(home, az):
    from airflow_cloudmarker import config as config_mod
    from airflow_cloudmarker import runner

    (home.parent / "work" / "cloudmarker.yaml").write_text(
        AUDIT.format(tenant=az.tenant, client=az.client, secret=az.secret, url=az.url)
    )
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    return result


def test_base_config_key_end_to_end_with_one_failing_server(airflow_db, azure, out_dir, home):
    """``cloudmarker -n`` with the base config's ``azpostgres``: a server whose parameters cannot be read
    fails the fetch task, after every other server's record (of its subscription too) was delivered."""
    bad = azure_rdbms.server_id(1, azure_rdbms.PG, "pg-1-partial")
    azure.fail[f"^{bad}/configurations$"] = 403
    result = run_audit(home, azure)
    assert result.state == "failed"
    assert result.failed_tasks == ["fetch_azpostgres"]
    records = json.loads((out_dir / "mypgaudit_azpostgres.json").read_text())
    assert sorted(r["raw"]["name"] for r in records) == [
        "pg-0-healthy",
        "pg-0-partial",
        "pg-0-unhealthy",
        "pg-1-healthy",
        "pg-1-unhealthy",
    ]
    assert {r["com"]["tls_enforced"] for r in records} == {True, False, None}
    assert all(r["com"]["origin_worker"] == "mypgaudit_azpostgres" for r in records)
    assert azure.secret not in (out_dir / "mypgaudit_azpostgres.json").read_text()

"""AzCloud and AzVM with the real azure-identity / azure-mgmt-* clients against the local HTTPS server
(its built-in estate plus the MySQL servers and web apps of ``servers.azure_rdbms``).

No Airflow DAG here: the plugins are called as the fetch tasks call them (``shards()``, ``read(shard)``).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from azure.core.exceptions import HttpResponseError
from servers import azure_rdbms
from servers.azure import LIST_PATHS, FakeAzure
from servers.azure import plugin_params as params

from airflow_cloudmarker.azure.arm import AzureAuthError, ItemReadError
from airflow_cloudmarker.clouds.azcloud import AzCloud
from airflow_cloudmarker.clouds.azvm import AzVM


@pytest.fixture
def azure(tmp_path, monkeypatch):
    """A fresh server (2 subscriptions, 3 VMs each, pages of 2 items) whose CA the SDKs trust."""
    with FakeAzure(tmp_path / "ca", subscriptions=2, vms=3, page_size=2) as az:
        azure_rdbms.populate(az)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield az


def by_type(records):
    return Counter(r["ext"]["record_type"] for r in records)


def test_azcloud_one_list_call_per_type_per_subscription_plus_pages(azure):
    cloud = AzCloud(**params(azure))
    shards = cloud.shards()
    assert shards == list(azure.subs)
    records = [r for shard in shards for r in cloud.read(shard)]
    cloud.done()
    # 2 subscriptions: 3 VMs, 1 NSG with 2 custom + 6 default rules, 2 MySQL servers, 2 web apps,
    # one of everything else each.
    assert by_type(records) == {
        "virtual_machine": 6,
        "firewall_rule": 16,
        **{t: 2 for t in ("subscription", "app_gateway", "lb", "nic", "nsg", "public_ip", "storage_account")},
        "resource_group": 2,
        "mysql_server": 4,
        "web_apps": 4,
    }
    counts = azure.counts()
    for sub in shards:
        for path in [*LIST_PATHS, f"providers/{azure_rdbms.MYSQL}", f"providers/{azure_rdbms.SITES}"]:
            calls = sum(n for (m, p), n in counts.items() if p.lower() == f"/subscriptions/{sub}/{path}".lower())
            # one list call per type; the 3 VMs come in 2 pages (the second through nextLink)
            assert calls == (2 if path.endswith("virtualmachines") else 1), (sub, path)
        assert counts[("GET", f"/subscriptions/{sub}")] == 1
    # the only per-item calls: the require_secure_transport parameter of each MySQL server
    parameter_gets = [p for (m, p) in counts if "/configurations/" in p]
    assert len(parameter_gets) == 4 and all(counts[("GET", p)] == 1 for p in parameter_gets)
    # the subscription list, then per subscription: its get, 10 lists, a second VM page, 2 parameters
    assert len(azure.arm_calls()) == 1 + 2 * (1 + 10 + 1 + 2)
    assert counts[("POST", f"/{azure.tenant}/oauth2/v2.0/token")] == 1  # one token for all calls


def test_azcloud_record_shape(azure):
    sub_id = next(iter(azure.subs))
    records = list(AzCloud(**params(azure)).read(sub_id))
    vm = next(r for r in records if r["ext"]["record_type"] == "virtual_machine")
    assert vm["ext"] == {
        "cloud_type": "azure",
        "record_type": "virtual_machine",
        "subscription_id": sub_id,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
    }
    assert vm["com"] == {"cloud_type": "azure", "record_type": "compute", "reference": vm["raw"]["id"]}
    assert vm["raw"]["properties"]["storageProfile"]["osDisk"]["name"] == vm["raw"]["name"] + "-os"
    rules = {r["raw"]["name"]: r for r in records if r["ext"]["record_type"] == "firewall_rule"}
    ssh = rules["allow-ssh"]["com"]
    assert (ssh["source_addresses"], ssh["destination_ports"], ssh["protocol"]) == (["0.0.0.0/0"], ["22"], "tcp")
    assert rules["allow-db-from-office"]["com"]["destination_ports"] == ["1433", "3306"]
    assert rules["DenyAllInBound"]["com"]["access"] == "deny"
    assert rules["allow-ssh"]["ext"]["nsg_name"] == "nsg-0"
    sub = next(r for r in records if r["ext"]["record_type"] == "subscription")
    assert sub["com"]["reference"] == f"/subscriptions/{sub_id}"
    assert azure.secret not in json.dumps(records, default=str)


def test_azcloud_unsharded_read_and_limits(azure):
    records = list(AzCloud(**params(azure, _max_subs=1, _max_recs=1, threads=3)).read())
    assert {r["ext"]["subscription_id"] for r in records} == {next(iter(azure.subs))}
    assert by_type(records)["virtual_machine"] == 1
    assert by_type(records)["firewall_rule"] == 8  # the NSG's rules (the limit counts resources)
    assert by_type(records)["mysql_server"] == 1
    assert sum(1 for _, p, _ in azure.calls if "/configurations/" in p) == 1
    assert AzCloud(**params(azure, _max_subs=1)).shards() == [next(iter(azure.subs))]


def test_throttled_call_is_retried_after_retry_after(azure):
    sub_id = next(iter(azure.subs))
    azure.throttle[r"/networkSecurityGroups$"] = 1
    started = time.monotonic()
    records = list(AzCloud(**params(azure)).read(sub_id))
    assert time.monotonic() - started >= 1.0  # waited the Retry-After: 1
    assert by_type(records)["nsg"] == 1
    statuses = [s for _, p, s in azure.calls if p.endswith("/networkSecurityGroups")]
    assert statuses == [429, 200]


def test_failing_subscription_fails_only_its_own_read(azure):
    bad, good = list(azure.subs)
    azure.fail[f"^/subscriptions/{bad}/providers/Microsoft.Network/loadBalancers"] = 500
    cloud = AzCloud(**params(azure))
    with pytest.raises(HttpResponseError, match="InternalServerError"):
        list(cloud.read(bad))
    statuses = [s for _, p, s in azure.calls if p.endswith(f"{bad}/providers/Microsoft.Network/loadBalancers")]
    assert statuses == [500] * 4  # the first try and azure-core's 3 retries
    assert by_type(cloud.read(good))["lb"] == 1


def test_forbidden_subscription_raises_without_retries(azure):
    bad = next(iter(azure.subs))
    azure.fail[f"^/subscriptions/{bad}$"] = 403
    with pytest.raises(HttpResponseError, match="AuthorizationFailed"):
        list(AzCloud(**params(azure)).read(bad))


def test_azvm_one_instance_view_per_vm(azure):
    vm = AzVM(**params(azure, threads=4))
    records = [r for shard in vm.shards() for r in vm.read(shard)]
    assert len(records) == 6
    views = [p for _, p, _ in azure.calls if p.endswith("/instanceView")]
    assert len(views) == 6 and len(set(views)) == 6
    first = next(r for r in records if r["raw"]["name"] == "vm-0-0")
    other = next(r for r in records if r["raw"]["name"] == "vm-0-1")
    assert first["ext"]["record_type"] == "vm_instance_view"
    assert (
        first["ext"]["power_state"],
        first["ext"]["os_disk_encrypted"],
        first["ext"]["all_data_disks_encrypted"],
    ) == (
        "running",
        True,
        True,
    )
    assert first["ext"]["extensions"] == ["AzureDiskEncryptionForLinux"]
    assert (
        other["ext"]["power_state"],
        other["ext"]["os_disk_encrypted"],
        other["ext"]["all_data_disks_encrypted"],
    ) == (
        "deallocated",
        False,
        False,
    )
    assert first["com"] == {"cloud_type": "azure", "record_type": "compute", "reference": first["raw"]["id"]}
    assert first["raw"]["instance_view"]["disks"][0]["name"] == "vm-0-0-os"


def test_rejected_secret_gives_one_clear_error(azure):
    with pytest.raises(AzureAuthError, match="rejected the credentials") as info:
        AzCloud(**params(azure, secret="wrong-secret-value")).shards()
    assert "AADSTS7000215" in str(info.value)
    assert "wrong-secret-value" not in str(info.value)
    assert not azure.arm_calls()


def test_connection_id_supplies_the_credentials(azure, monkeypatch):
    conn = {"conn_type": "generic", "login": azure.client, "password": azure.secret, "extra": {"tenant": azure.tenant}}
    monkeypatch.setenv("AIRFLOW_CONN_AZURE_AUDIT", json.dumps(conn))
    cloud = AzCloud(conn_id="azure_audit", authority_host=azure.url, resource_manager_url=azure.url)
    assert cloud.shards() == list(azure.subs)
    assert azure.secret not in repr(cloud._settings)


def test_azcloud_every_mysql_server_with_its_tls_enforcement(azure):
    sub_id = azure_rdbms.subscription_id(1)
    records = list(AzCloud(**params(azure)).read(sub_id))
    mysql = {r["raw"]["name"]: r for r in records if r["ext"]["record_type"] == "mysql_server"}
    assert sorted(mysql) == ["mysql-1-plain", "mysql-1-tls"]  # the original stopped after the first
    tls, plain = mysql["mysql-1-tls"], mysql["mysql-1-plain"]
    assert tls["com"] == {
        "cloud_type": "azure",
        "record_type": "rdbms",
        "reference": azure_rdbms.server_id(1, azure_rdbms.MYSQL, "mysql-1-tls"),
        "tls_enforced": True,
    }
    assert plain["com"]["tls_enforced"] is False
    assert plain["ext"]["subscription_id"] == sub_id and plain["ext"]["tenant_id"] == azure.tenant
    # raw is the ARM shape like every other record (the MySQL SDK's as_dict() would flatten it)
    assert plain["raw"]["properties"]["fullyQualifiedDomainName"] == "mysql-1-plain.mysql.database.azure.com"
    assert plain["raw"]["properties"]["storage"]["storageSizeGB"] == 20


def test_azcloud_web_apps_and_a_common_type_on_every_record(azure):
    records = list(AzCloud(**params(azure)).read(azure_rdbms.subscription_id(0)))
    apps = {r["raw"]["name"]: r for r in records if r["ext"]["record_type"] == "web_apps"}
    assert sorted(apps) == ["app-0", "func-0"]
    assert apps["func-0"]["raw"]["kind"] == "functionapp"
    assert apps["app-0"]["raw"]["properties"]["httpsOnly"] is True
    assert apps["app-0"]["com"] == {
        "cloud_type": "azure",
        "record_type": "web_apps",
        "reference": azure_rdbms.server_id(0, azure_rdbms.SITES, "app-0"),
    }
    common = {r["ext"]["record_type"]: r["com"]["record_type"] for r in records}
    assert common == {
        "subscription": "subscription",
        "virtual_machine": "compute",
        "mysql_server": "rdbms",
        "firewall_rule": "firewall_rule",
        **{t: t for t in ("app_gateway", "lb", "nic", "nsg", "public_ip", "storage_account", "resource_group")},
        "web_apps": "web_apps",
    }


def test_azcloud_failing_mysql_parameter_names_the_server_after_every_other_record(azure):
    sub_id = azure_rdbms.subscription_id(0)
    bad = azure_rdbms.server_id(0, azure_rdbms.MYSQL, "mysql-0-tls")
    azure.fail[f"^{bad}/configurations/require_secure_transport$"] = 403
    records = []
    with pytest.raises(ItemReadError) as info:
        records.extend(AzCloud(**params(azure)).read(sub_id))
    assert str(info.value).startswith("AzCloud: the require_secure_transport parameter of 1 of 2 MySQL servers")
    assert bad in str(info.value) and "AuthorizationFailed" in str(info.value)
    assert [r["raw"]["name"] for r in records if r["ext"]["record_type"] == "mysql_server"] == ["mysql-0-plain"]
    assert by_type(records)["firewall_rule"] == 8 and by_type(records)["web_apps"] == 2  # the rest came through


def test_azcloud_mysql_server_without_the_parameter_has_unknown_tls(azure):
    server = azure_rdbms.server_id(0, azure_rdbms.MYSQL, "mysql-0-plain")
    del azure.objects[f"{server}/configurations/require_secure_transport".lower()]  # answers 404 now
    records = list(AzCloud(**params(azure)).read(azure_rdbms.subscription_id(0)))
    plain = next(r for r in records if r["raw"].get("name") == "mysql-0-plain")
    assert plain["com"]["tls_enforced"] is None


def test_a_throttled_subscription_slows_only_itself_and_its_429s_are_counted(azure):
    """Shards read at once, as a fetch task reads them: a fresh instance each, on its own thread."""
    import threading

    hot, cold = list(azure.subs)
    azure.retry_after = "1"
    azure.throttle[f"^/subscriptions/{hot}/providers/"] = 3
    finished: dict[str, float] = {}
    counts: dict[str, dict] = {}
    started = time.monotonic()

    def read(sub: str) -> None:
        cloud = AzCloud(**params(azure))
        assert len(list(cloud.read(sub))) > 10
        counts[sub] = cloud.api_counts()
        cloud.done()
        finished[sub] = time.monotonic() - started

    threads = [threading.Thread(target=read, args=(sub,)) for sub in (hot, cold)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts[hot]["throttled_calls"] == 3 and counts[cold]["throttled_calls"] == 0
    assert counts[hot]["api_calls"] == counts[cold]["api_calls"] + 3  # each 429 retried once
    assert finished[hot] >= 1.0  # waited as Retry-After said
    assert finished[cold] < finished[hot] - 0.5, finished  # not held by the other subscription's throttling
    statuses = [s for _, p, s in azure.calls if p.startswith(f"/subscriptions/{cold}")]
    assert 429 not in statuses


def test_an_unregistered_resource_provider_lists_nothing_and_is_never_registered(azure):
    """ARM answers 409 MissingSubscriptionRegistration for a provider the subscription never registered
    (common: few subscriptions have Microsoft.DBforMySQL or Microsoft.DBforPostgreSQL). That is an empty
    list, not a failure; and the SDK's automatic registration (a POST: a write) is refused before it is sent."""
    from airflow_cloudmarker.clouds.azpostgres import AzPostgres

    sub_id = azure_rdbms.subscription_id(0)
    azure.fail[f"^/subscriptions/{sub_id}/providers/{azure_rdbms.MYSQL}$"] = 409
    azure.fail[f"^/subscriptions/{sub_id}/providers/{azure_rdbms.PG}$"] = 409
    records = list(AzCloud(**params(azure)).read(sub_id))
    counts = by_type(records)
    assert "mysql_server" not in counts and counts["web_apps"] == 2 and counts["nsg"] == 1
    assert list(AzPostgres(**params(azure)).read(sub_id)) == []
    assert not [c for c in azure.calls if c[0] == "POST" and c[1].lower().endswith("/register")]
    statuses = [s for _, p, s in azure.calls if p.endswith(f"/providers/{azure_rdbms.MYSQL}")]
    assert statuses == [409]  # one answer, no retry


def test_shard_instances_share_one_token_and_pool_but_count_their_own_calls(azure):
    shards = AzCloud(**params(azure)).shards()
    counts = []
    for shard in shards:  # as the fetch task reads them: a fresh instance per shard
        cloud = AzCloud(**params(azure))
        records = list(cloud.read(shard))
        counts.append(cloud.api_counts()["api_calls"])
        cloud.done()
        assert {r["ext"]["subscription_id"] for r in records} == {shard}
    assert counts == [1 + 10 + 1 + 2] * 2  # each instance: its get, 10 lists, a second VM page, 2 parameters
    assert azure.counts()[("POST", f"/{azure.tenant}/oauth2/v2.0/token")] == 1


def test_a_failed_authentication_is_not_shared(azure):
    for _ in range(2):  # each instance tries again and reports its own error
        with pytest.raises(AzureAuthError, match="rejected the credentials"):
            list(AzCloud(**params(azure, secret="wrong")).read(next(iter(azure.subs))))
    assert azure.counts()[("POST", f"/{azure.tenant}/oauth2/v2.0/token")] == 2
    assert len(list(AzCloud(**params(azure)).read(next(iter(azure.subs))))) > 0

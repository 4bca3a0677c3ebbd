"""AzWebApp with the real azure-mgmt-web client against the local ARM server (tests/servers/azure_web.py)."""

from __future__ import annotations

import json

import pytest
from servers import azure_web
from support.azure_mgmt import arm_gets, estate, params, read_all

from airflow_cloudmarker import plugins
from airflow_cloudmarker.azure.arm import ItemReadError
from airflow_cloudmarker.clouds.azwebapp import AzWebApp


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with estate(tmp_path, monkeypatch, azure_web.populate) as az:
        yield az


def site_id(sid: str, index: int, suffix: str) -> str:
    return f"/subscriptions/{sid}/resourceGroups/rg-{index}/providers/Microsoft.Web/sites/app-{index}-{suffix}"


def test_site_and_configuration_fields_of_web_and_function_apps(azure):
    records = read_all(AzWebApp(**params(azure)))
    assert len(records) == 6
    sid = azure.subscription_ids()[0]
    mine = {r["raw"]["name"]: r for r in records if r["ext"]["subscription_id"] == sid}
    fields = ("https_only", "client_cert_enabled", "http20_enabled", "min_tls_version", "kind")
    got = {name: tuple(r["ext"][f] for f in fields) for name, r in mine.items()}
    assert got == {
        "app-0-good": (True, True, True, "1.2", "app"),
        "app-0-bad": (False, False, False, "1.0", "app,linux"),
        "app-0-func": (True, None, None, "1.1", "functionapp,linux"),  # fields Azure left out are null
    }
    good = mine["app-0-good"]
    assert good["ext"] == {
        "cloud_type": "azure",
        "record_type": "web_app_config",
        "subscription_id": sid,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "https_only": True,
        "client_cert_enabled": True,
        "http20_enabled": True,
        "min_tls_version": "1.2",
        "kind": "app",
    }
    assert good["com"] == {"cloud_type": "azure", "record_type": "web_app", "reference": site_id(sid, 0, "good")}
    assert good["raw"]["properties"]["httpsOnly"] is True  # the site as listed
    assert good["raw"]["config"]["id"] == site_id(sid, 0, "good") + "/config/web"
    assert good["raw"]["config"]["properties"]["minTlsVersion"] == "1.2"
    assert azure.secret not in json.dumps(records)


def test_one_list_call_per_subscription_and_one_configuration_call_per_site(azure):
    read_all(AzWebApp(**params(azure, threads=4)))
    expected = {}
    for index, sid in enumerate(azure.subscription_ids()):
        expected[f"/subscriptions/{sid}/providers/microsoft.web/sites"] = 2  # 3 sites in pages of 2
        for suffix in azure_web.SITES:
            expected[site_id(sid, index, suffix).lower() + "/config/web"] = 1
    assert arm_gets(azure) == expected


def test_a_failing_configuration_loses_only_its_site_and_is_named(azure):
    sid = azure.subscription_ids()[0]
    bad = site_id(sid, 0, "bad")
    azure.fail[f"^{bad}/config/web$"] = 500
    cloud = AzWebApp(**params(azure))
    records = []
    with pytest.raises(ItemReadError) as info:
        records.extend(cloud.read(sid))
    assert sorted(r["raw"]["name"] for r in records) == ["app-0-func", "app-0-good"]
    assert str(info.value).startswith(f"AzWebApp: 1 of 3 items could not be read ({bad}): ")
    assert "InternalServerError" in str(info.value)


def test_max_recs_limits_the_sites_and_their_configuration_calls(azure):
    records = list(AzWebApp(**params(azure, _max_recs=1)).read())
    assert len(records) == 2
    assert sum(n for path, n in arm_gets(azure).items() if path.endswith("/config/web")) == 2


def test_loadable_under_the_original_path():
    assert plugins.load_class("cloudmarker.clouds.azwebapp.AzWebApp") is AzWebApp

"""AzDisk, AzStorageAccount, AzWebApp and AzSQL end to end through Airflow (``runner.run_now``, what
``cloudmarker -n`` calls) under their base config keys, with the real Azure SDKs and the local server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from servers import azure_disks, azure_sql, azure_storage, azure_web
from support.azure_mgmt import estate

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

CLOUDS = ("azdisk", "azstorageaccount", "azwebapp", "azsql")
PARAMS = """\
    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
      retry_backoff: 0
"""


def config_text(az) -> str:
    """The four base config keys given credentials, in one audit (no plugin paths: the base config has them)."""
    plugins = "".join(f"  {key}:\n" + PARAMS.format(**vars_of(az)) for key in CLOUDS)
    clouds = "".join(f"      - {key}\n" for key in CLOUDS)
    return (
        f"plugins:\n{plugins}\naudits:\n  mgmtaudit:\n    clouds:\n{clouds}"
        "    stores:\n      - filestore\n    events: []\n    alerts:\n      - filestore\n\nrun:\n  - mgmtaudit\n"
    )


def vars_of(az) -> dict:
    return {"tenant": az.tenant, "client": az.client, "secret": az.secret, "url": az.url}


@pytest.fixture
def azure(tmp_path, monkeypatch):
    families = (azure_disks.populate, azure_storage.populate, azure_web.populate, azure_sql.populate)
    with estate(tmp_path, monkeypatch, *families, subscriptions=2) as az:
        yield az


def read_json(path):
    with open(path) as f:
        return json.load(f)


def test_four_clouds_under_their_base_config_keys_with_one_failing_tde_read(airflow_db, azure, out_dir, home):
    sid = azure.subscription_ids()[1]
    legacy = f"/subscriptions/{sid}/resourceGroups/rg-1/providers/Microsoft.Sql/servers/sql-1-a/databases/legacy"
    azure.fail[f"^{legacy}/transparentDataEncryption/current$"] = 403
    (home.parent / "work" / "cloudmarker.yaml").write_text(config_text(azure))
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS)
    assert result.state == "failed"
    assert result.failed_tasks == ["fetch_azsql"]  # the mapped fetch task of the subscription with the bad read
    expected = {
        "azdisk": ("disk", 6),
        "azstorageaccount": ("storage_account_properties", 10),
        "azwebapp": ("web_app_config", 6),
    }
    for key, (record_type, count) in expected.items():
        records = read_json(out_dir / f"mgmtaudit_{key}.json")
        assert len(records) == count, key
        assert {r["ext"]["record_type"] for r in records} == {record_type}
        assert {r["ext"]["subscription_id"] for r in records} == set(azure.subscription_ids())
    sql = read_json(out_dir / "mgmtaudit_azsql.json")
    # Every database but the one whose TDE read failed: the failing task delivers what it read.
    names = sorted((r["ext"]["subscription_id"], r["raw"]["name"]) for r in sql)
    good = azure.subscription_ids()[0]
    assert [n for s, n in names if s == good] == ["legacy", "orders", "reports"]
    assert [n for s, n in names if s == sid] == ["orders", "reports"]
    files = [Path(folder, name) for folder, _, names in os.walk(out_dir) for name in names]
    assert files and not [f for f in files if azure.secret.encode() in f.read_bytes()]

"""AzKV with the real azure-mgmt-keyvault / azure-keyvault-* clients against the local ARM + Key Vault server.

The plugin is called as the fetch tasks call it (``shards()``, ``read(shard)``). Each subscription of
the fake has two vaults (``tests/servers/azure_keyvault.py``): ``kv-N-a`` (RBAC, purge protection,
2 secrets, 5 keys in pages of 2) and ``kv-N-b`` (access policies, no purge protection, 1 secret, 1 key).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from servers import azure_keyvault
from servers.azure import FakeAzure
from servers.azure import plugin_params as params

from airflow_cloudmarker.azure.arm import ItemReadError
from airflow_cloudmarker.clouds.azkv import AzKV

VAULTS_PATH = "/subscriptions/{}/providers/Microsoft.KeyVault/vaults"


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with FakeAzure(tmp_path / "ca", subscriptions=2, page_size=2) as az:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        az.keyvault = azure_keyvault.install(az)
        yield az


def read_all(cloud):
    records = [r for shard in cloud.shards() for r in cloud.read(shard)]
    cloud.done()
    return records


def by_reference(records):
    return {r["com"]["reference"]: r for r in records}


def data_plane_calls(az, status=None):
    return Counter(p for _, p, s in az.calls if p.startswith("/vaults/") and status in (None, s))


def test_records_field_by_field(azure):
    records = read_all(AzKV(**params(azure)))
    assert Counter(r["ext"]["record_type"] for r in records) == {
        "key_vault": 4,
        "key_vault_secret": 6,
        "key_vault_key": 12,
    }
    for r in records:
        assert r["com"]["record_type"] == r["ext"]["record_type"]
    refs = by_reference(records)
    sub0 = azure.subscription_ids()[0]
    vault_a = refs[f"/subscriptions/{sub0}/resourceGroups/rg-kv-0/providers/Microsoft.KeyVault/vaults/kv-0-a"]
    assert vault_a["ext"] == {
        "cloud_type": "azure",
        "record_type": "key_vault",
        "subscription_id": sub0,
        "subscription_name": "Subscription 0",
        "subscription_state": "Enabled",
        "tenant_id": azure.tenant,
        "enable_soft_delete": True,  # not given by the vault: on (mandatory since 2025, the API's default)
        "enable_purge_protection": True,
        "recoverable": True,
    }
    assert vault_a["raw"]["properties"]["vaultUri"] == f"{azure.url}/vaults/kv-0-a/"
    assert vault_a["raw"]["properties"]["enableRbacAuthorization"] is True
    vault_b = refs[f"/subscriptions/{sub0}/resourceGroups/rg-kv-0/providers/Microsoft.KeyVault/vaults/kv-0-b"]
    assert (vault_b["ext"]["enable_soft_delete"], vault_b["ext"]["enable_purge_protection"]) == (True, False)
    assert vault_b["ext"]["recoverable"] is False

    secret = refs["https://kv-0-a.vault.azure.net/secrets/db-password"]
    assert secret["raw"] == {
        "id": "https://kv-0-a.vault.azure.net/secrets/db-password",
        "name": "db-password",
        "enabled": True,
        "expires_on": None,
        "not_before": None,
        "created_on": "2026-01-01T00:00:00+00:00",
        "updated_on": "2026-01-01T00:01:00+00:00",
        "recovery_level": "Recoverable+Purgeable",
        "recoverable_days": 90,
        "tags": {"owner": "team-a"},
        "content_type": "text/plain",
        "managed": None,
    }
    assert {k: secret["ext"][k] for k in ("expiry_set", "enabled", "reference", "vault_name")} == {
        "expiry_set": False,
        "enabled": True,
        "reference": secret["raw"]["id"],
        "vault_name": "kv-0-a",
    }
    assert secret["ext"]["vault_id"] == vault_a["com"]["reference"]
    assert secret["ext"]["subscription_id"] == sub0
    with_expiry = refs["https://kv-0-a.vault.azure.net/secrets/api-token"]
    assert with_expiry["ext"]["expiry_set"] is True
    assert with_expiry["raw"]["expires_on"] == "2027-01-01T00:00:00+00:00"
    assert with_expiry["raw"]["not_before"] == "2026-01-01T00:00:00+00:00"

    key = refs["https://kv-0-a.vault.azure.net/keys/k-noexp"]
    assert (key["ext"]["expiry_set"], key["ext"]["enabled"], key["ext"]["reference"]) == (False, True, key["raw"]["id"])
    assert "content_type" not in key["raw"]  # keys have none
    assert refs["https://kv-0-a.vault.azure.net/keys/k-disabled"]["ext"]["enabled"] is False
    assert refs["https://kv-0-a.vault.azure.net/keys/k-cert"]["raw"]["managed"] is True
    assert refs["https://kv-0-a.vault.azure.net/keys/k-old"]["ext"]["expiry_set"] is True


def test_no_value_is_read_and_no_secret_reaches_a_record(azure):
    records = read_all(AzKV(**params(azure)))
    text = json.dumps(records)
    for vault in azure.keyvault.vaults.values():
        for item in vault.secrets:
            assert vault.secret_value(item["id"].rsplit("/", 1)[1]) not in text
    assert azure.secret not in text
    assert '"value"' not in text and '"key":' not in text
    # only the two list endpoints (and their pages) were called, never a secret's or key's GET
    assert {p.rsplit("/", 1)[1] for p in data_plane_calls(azure)} == {"secrets", "keys"}


def test_call_counts_and_the_authentication_challenge(azure):
    records = read_all(AzKV(**params(azure)))
    assert len(records) == 22
    counts = azure.counts()
    for sub in azure.subscription_ids():
        assert counts[("GET", VAULTS_PATH.format(sub))] == 1  # full vaults in one list: no per-vault get
        assert counts[("GET", f"/subscriptions/{sub}")] == 1  # the shard's subscription
    ok = data_plane_calls(azure, 200)
    for index in range(2):
        # pages of 2: 2 secrets in 1 page, 5 keys in 3 pages; 1 secret and 1 key in 1 page each
        assert ok[f"/vaults/kv-{index}-a/secrets"] == 1 and ok[f"/vaults/kv-{index}-a/keys"] == 3
        assert ok[f"/vaults/kv-{index}-b/secrets"] == 1 and ok[f"/vaults/kv-{index}-b/keys"] == 1
    # Key Vault's challenge: the first request of each package's client carries no token and gets a 401
    # naming the authority and resource; the SDK asks for a token and sends the request again.
    challenged = data_plane_calls(azure, 401)
    assert azure.keyvault.challenges == sum(challenged.values()) >= 2  # keys and secrets clients each
    assert set(challenged) <= set(ok)
    assert counts[("POST", f"/{azure.tenant}/oauth2/v2.0/token")] >= 2  # the ARM token, then the vault's
    assert data_plane_calls(azure, 403) == Counter()


def test_a_403_on_one_vaults_keys_loses_nothing_else_and_names_the_permission(azure):
    sub0, sub1 = azure.subscription_ids()
    azure.keyvault.deny("kv-1-b", "keys")  # access-policy vault: no List on keys
    cloud = AzKV(**params(azure))
    assert len(list(cloud.read(sub0))) == 11
    records = []
    with pytest.raises(ItemReadError) as failure:
        for record in cloud.read(sub1):
            records.append(record)
    message = str(failure.value)
    assert "1 of 6 items could not be read" in message
    assert f"/subscriptions/{sub1}/resourceGroups/rg-kv-1/providers/Microsoft.KeyVault/vaults/kv-1-b (keys)" in message
    assert "Key Vault kv-1-b" in message and "refused to list its keys (HTTP 403 Forbidden AccessDenied)" in message
    assert "List permission on keys and secrets in the vault's access policies" in message
    # every other record of the subscription was read, the denied vault's own record and secrets included
    assert Counter(r["ext"]["record_type"] for r in records) == {
        "key_vault": 2,
        "key_vault_secret": 3,
        "key_vault_key": 5,
    }
    assert {r["ext"].get("vault_name") for r in records if r["ext"]["record_type"] != "key_vault"} == {
        "kv-1-a",
        "kv-1-b",
    }
    assert data_plane_calls(azure, 403) == Counter({"/vaults/kv-1-b/keys": 1})  # a 403 is not retried


def test_a_403_on_an_rbac_vault_asks_for_the_key_vault_reader_role(azure):
    sub0 = azure.subscription_ids()[0]
    azure.keyvault.deny("kv-0-a", "secrets")
    azure.keyvault.deny("kv-0-a", "keys")
    records = []
    with pytest.raises(ItemReadError) as failure:
        for record in AzKV(**params(azure)).read(sub0):
            records.append(record)
    assert "2 of 6 items could not be read" in str(failure.value)
    assert "kv-0-a (keys)" in str(failure.value) and "kv-0-a (secrets)" in str(failure.value)
    assert "ForbiddenByRbac" in str(failure.value) and "Key Vault Reader role" in str(failure.value)
    assert sorted(r["com"]["reference"].rsplit("/", 1)[1] for r in records) == ["kv-0-a", "kv-0-b", "legacy", "signing"]


def test_the_sdk_refuses_a_challenge_for_another_resource(azure):
    """The challenge-resource check stays on: a server naming vault.azure.net for 127.0.0.1 gets no token."""
    azure.keyvault.foreign_resource = True
    sub0 = azure.subscription_ids()[0]
    with pytest.raises(ItemReadError, match="does not match the requested domain"):
        list(AzKV(**params(azure)).read(sub0))
    assert data_plane_calls(azure, 200) == Counter()
    assert set(data_plane_calls(azure)) == set(data_plane_calls(azure, 401))  # every data-plane call unauthenticated


def test_vaults_only_and_limits(azure):
    sub0 = azure.subscription_ids()[0]
    # a vault created before 2025 with soft delete off is not recoverable, whatever its purge protection
    old = json.loads(json.dumps(azure.keyvault.vaults["kv-0-b"].arm))
    old["id"], old["name"] = old["id"].replace("kv-0-b", "kv-0-old"), "kv-0-old"
    old["properties"].update(enableSoftDelete=False, enablePurgeProtection=True)
    azure.add_list(VAULTS_PATH.format(sub0), [old])
    records = list(AzKV(**params(azure, keys_and_secrets=False)).read(sub0))
    assert {r["raw"]["name"]: r["ext"]["recoverable"] for r in records} == {
        "kv-0-a": True,
        "kv-0-b": False,
        "kv-0-old": False,
    }
    assert data_plane_calls(azure) == Counter()  # no data-plane call at all

    limited = list(AzKV(**params(azure, _max_recs=1)).read(sub0))  # one vault, with all its secrets and keys
    assert Counter(r["ext"]["record_type"] for r in limited) == {
        "key_vault": 1,
        "key_vault_secret": 2,
        "key_vault_key": 5,
    }

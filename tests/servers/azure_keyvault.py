"""Key vaults for a FakeAzure: the ARM vaults (management plane) and the Key Vault data plane.

Management plane: ``GET /subscriptions/{id}/providers/Microsoft.KeyVault/vaults`` lists full vaults in
ARM JSON (``properties.vaultUri``, ``enableSoftDelete``, ``enablePurgeProtection``,
``enableRbacAuthorization``), served by ``FakeAzure.add_list``.

Data plane (``FakeAzure.add_route``): each vault lives under ``{az.url}/vaults/{name}`` and answers
``GET .../secrets`` and ``GET .../keys`` (and ``GET .../secrets/{name}``, a secret with its value, which
AzKV must never call) in Key Vault's wire format: ``{"value": [...], "nextLink"}``
pages of ``{"id" (secrets) / "kid" (keys), "attributes": {"enabled", "exp", "nbf", "created", "updated",
"recoveryLevel", "recoverableDays"}, "tags", "contentType", "managed"}`` with Unix-time attributes.
Item ids keep Key Vault's public form ``https://{vault}.vault.azure.net/keys/{name}``: the SDK parses
an id as ``<host>/<collection>/<name>[/<version>]``, so the fake's path prefix cannot be in it.

Authentication is Key Vault's challenge: a request without a bearer token gets 401 with
``WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="..."``. The SDK's challenge
policy only sends a token when the request host ends with ``.`` + the resource's host (so a server
cannot ask for a token of another service). Key Vault names the parent domain of the vault host
(``kv.vault.azure.net`` -> ``vault.azure.net``); the fake does the same for its host
(``127.0.0.1:PORT`` -> ``0.0.1:PORT``), which the check accepts. ``foreign_resource`` makes the fake
name ``https://vault.azure.net`` instead, as a server posing as a vault would; the SDK then refuses.
A token the login endpoint did not issue also gets the 401 challenge. ``deny(vault, collection)``
answers 403 with Key Vault's ``Forbidden`` error, as for a principal without list permission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.azure import FakeAzure

API_PATH = "providers/Microsoft.KeyVault/vaults"
PAGE_SIZE = 2  # Key Vault pages 25 items; a small page makes every list of more than 2 items page
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
YEAR = 365 * 86400


@dataclass
class Vault:
    """One vault of the estate: its ARM JSON and its data-plane items."""

    arm: dict
    secrets: list[dict] = field(default_factory=list)
    keys: list[dict] = field(default_factory=list)

    def secret_value(self, name: str) -> str:
        """The value ``GET /secrets/{name}`` would return (lists never carry it)."""
        return f"s3cr3t-value-of-{self.arm['name']}-{name}"


def _attributes(enabled: bool, expires: bool, index: int) -> dict:
    attributes: dict[str, Any] = {
        "enabled": enabled,
        "created": T0 + index,
        "updated": T0 + index + 60,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }
    if expires:
        attributes["exp"] = T0 + YEAR
        attributes["nbf"] = T0
    return attributes


def _items(vault: str, collection: str, specs: list[tuple[str, bool, bool]]) -> list[dict]:
    """Data-plane list items for ``specs`` of (name, enabled, has expiry)."""
    id_key = "kid" if collection == "keys" else "id"
    items = []
    for index, (name, enabled, expires) in enumerate(specs):
        item: dict[str, Any] = {
            id_key: f"https://{vault}.vault.azure.net/{collection}/{name}",
            "attributes": _attributes(enabled, expires, index),
            "tags": {"owner": "team-a"} if index == 0 else {},
        }
        if collection == "secrets":
            item["contentType"] = "text/plain"
        if index == 2:
            item["managed"] = True  # a key or secret backing a certificate
        items.append(item)
    return items


def make_vaults(az: FakeAzure, index: int, sid: str) -> list[Vault]:
    """Two vaults per subscription: ``kv-{index}-a`` (RBAC, purge protection, soft delete unset, so on)
    with 2 secrets and 5 keys (pages of 2), and ``kv-{index}-b`` (access policies, soft delete but no
    purge protection) with 1 secret and 1 key. Both vaults mix items with/without expiry, enabled/disabled."""
    rg = f"rg-kv-{index}"
    vaults = []
    for suffix, rbac, purge in (("a", True, True), ("b", False, None)):
        name = f"kv-{index}-{suffix}"
        props: dict[str, Any] = {
            "tenantId": az.tenant,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "vaultUri": f"{az.url}/vaults/{name}/",
            "enableRbacAuthorization": rbac,
            "softDeleteRetentionInDays": 90,
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        }
        if not rbac:
            props["enableSoftDelete"] = True  # vault a leaves it unset (the API's default is true)
        if purge is not None:
            props["enablePurgeProtection"] = purge
        arm = {
            "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
            "name": name,
            "type": "Microsoft.KeyVault/vaults",
            "location": "eastus",
            "tags": {"env": "test"},
            "properties": props,
        }
        if suffix == "a":
            secrets = [("db-password", True, False), ("api-token", True, True)]
            keys = [("k-noexp", True, False), ("k-exp", True, True), ("k-cert", True, True)]
            keys += [("k-disabled", False, False), ("k-old", False, True)]
        else:
            secrets, keys = [("legacy", True, False)], [("signing", True, False)]
        vaults.append(Vault(arm, _items(name, "secrets", secrets), _items(name, "keys", keys)))
    return vaults


class KeyVaultPlane:
    """The data plane of every vault of a FakeAzure, and what tests look at (challenges, denials)."""

    def __init__(self, az: FakeAzure):
        self.az = az
        self.vaults: dict[str, Vault] = {}
        self.denied: set[tuple[str, str]] = set()
        self.foreign_resource = False
        self.challenges = 0
        self.page_size = PAGE_SIZE

    def deny(self, vault: str, collection: str) -> None:
        """Answer 403 (no list permission) to every listing of ``collection`` (keys/secrets) of ``vault``."""
        self.denied.add((vault, collection))

    def challenge(self) -> tuple[int, dict[str, str], dict]:
        host = self.az.url.removeprefix("https://")
        resource = "https://vault.azure.net" if self.foreign_resource else f"https://{host.split('.', 1)[1]}"
        header = f'Bearer authorization="{self.az.url}/{self.az.tenant}", resource="{resource}"'
        self.challenges += 1
        body = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
        return 401, {"WWW-Authenticate": header}, body

    def handle(self, method: str, path: str, query: dict, headers: Any, body: str) -> tuple[int, dict, Any]:
        m = re.fullmatch(r"/vaults/([^/]+)/(keys|secrets)(?:/([^/]+)(?:/[^/]+)?)?", path)
        if not m or method != "GET":
            return 404, {}, {"error": {"code": "NotFound", "message": f"no data-plane endpoint {method} {path}"}}
        name, collection, item = m.groups()
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.az._lock:
            known = token in self.az._tokens
        if not known:
            return self.challenge()
        if "api-version" not in query:
            return 400, {}, {"error": {"code": "BadParameter", "message": "The api-version parameter is missing."}}
        vault = self.vaults.get(name)
        if vault is None:
            return 404, {}, {"error": {"code": "VaultNotFound", "message": f"no vault {name}"}}
        if (name, collection) in self.denied:
            return 403, {}, forbidden(name, collection, vault.arm["properties"].get("enableRbacAuthorization"))
        items = getattr(vault, collection)
        if item is not None:
            return self.get_item(vault, collection, item)
        start = int(query.get("$skiptoken", ["0"])[0])
        end = start + self.page_size
        page: dict[str, Any] = {"value": items[start:end], "nextLink": None}
        if end < len(items):
            version = query["api-version"][0]
            page["nextLink"] = f"{self.az.url}/vaults/{name}/{collection}?api-version={version}&$skiptoken={end}"
        return 200, {}, page

    @staticmethod
    def get_item(vault: Vault, collection: str, name: str) -> tuple[int, dict, Any]:
        """``GET /secrets/{name}``: the secret with its value (what AzKV must never ask for); a key's JWK."""
        id_key = "kid" if collection == "keys" else "id"
        found = next((i for i in getattr(vault, collection) if i[id_key].rsplit("/", 1)[1] == name), None)
        if found is None:
            return 404, {}, {"error": {"code": f"{collection[:-1].title()}NotFound", "message": f"no {name}"}}
        if collection == "secrets":
            return 200, {}, {**found, "value": vault.secret_value(name)}
        return 200, {}, {**found, "key": {"kid": found["kid"], "kty": "RSA", "n": "AQAB-modulus", "e": "AQAB"}}


def forbidden(vault: str, collection: str, rbac: bool) -> dict:
    """Key Vault's 403 body for a principal that may not list ``collection``."""
    if rbac:
        action = f"Microsoft.KeyVault/vaults/{collection}/readMetadata/action"
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            f"propagation time.\r\nCaller: appid=client-app\r\nAction: '{action}'\r\nResource: '{vault}'"
        )
        return {"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}}
    message = (
        f"The user, group or application 'appid=client-app' does not have {collection} list permission on key "
        f"vault '{vault};location=eastus'. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125287"
    )
    return {"error": {"code": "Forbidden", "message": message, "innererror": {"code": "AccessDenied"}}}


def install(az: FakeAzure) -> KeyVaultPlane:
    """Add two vaults per subscription of ``az`` (ARM list and data plane); return the data plane."""
    plane = KeyVaultPlane(az)
    for index, sid in enumerate(az.subscription_ids()):
        vaults = make_vaults(az, index, sid)
        az.add_list(f"/subscriptions/{sid}/{API_PATH}", [v.arm for v in vaults])
        plane.vaults.update((v.arm["name"], v) for v in vaults)
    az.add_route(r"/vaults/[^/]+/(keys|secrets)(/.*)?", plane.handle)
    return plane


def populate(az: FakeAzure) -> None:
    """Give every subscription of ``az`` two key vaults with secrets and keys (see ``make_vaults``)."""
    install(az)

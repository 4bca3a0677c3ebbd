"""AzKV: every key vault, with the properties (never the values) of its secrets and keys.

The vaults come from the management API: ``vaults.list_by_subscription()`` returns full vaults
(soft delete, purge protection, RBAC mode), so no per-vault ``get`` is needed (the original called
``vaults.list()``, which now yields bare resources, and then ``get`` per vault). The secrets and keys
come from each vault's data plane (``SecretClient(...).list_properties_of_secrets()``,
``KeyClient(...).list_properties_of_keys()``), with the plugin's credential: Key Vault's
authentication challenge tells the SDK which token to get.

A vault's record, its secrets and its keys are three separate items of ``ResourceCloud``, so each
fails alone: a vault whose data plane refuses the principal (HTTP 403: the Reader role gives no
data-plane access) still gives its ``key_vault`` record, and every other vault is read. The fetch
task then fails with one error naming the vaults and the missing permission. Failing is deliberate:
a run that silently missed the keys would resolve their open no-expiry findings as if fixed; a
failed fetch leaves them open (see docs/findings.md) and tells the operator what to grant. A principal
that is meant to have no data-plane access sets ``keys_and_secrets: false``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: The three items of one vault (see the module docstring)
VAULT, SECRETS, KEYS = "vault", "secrets", "keys"


class KeyVaultAccessError(RuntimeError):
    """A vault's data plane refused to list its keys or secrets; the message says what to grant."""


class _OneTokenAtATime:
    """The plugin's credential for the data-plane clients, asked for one token at a time.

    Many threads meet Key Vault's challenge at once; each would fetch the same vault token
    (a login round trip each), while one after the other they find it in the credential's cache.
    """

    def __init__(self, credential: Any):
        self._credential = credential
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """The credential's ``get_token``, serialized."""
        with self._lock:
            return self._credential.get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        """The credential's ``get_token_info``, serialized (azure-core prefers it when present)."""
        with self._lock:
            return self._credential.get_token_info(*scopes, **kwargs)


@dataclass(frozen=True)
class _Clients:
    """What the items of one subscription need: the management client and the data-plane settings."""

    management: Any
    credential: Any
    data_plane_kwargs: dict[str, Any]


class AzKV(arm.ResourceCloud):
    """Read every key vault of every subscription, with its secrets' and keys' properties.

    Params: the same as AzVM (tenant, client, secret or conn_id; processes, threads, _max_subs,
    _max_recs (vaults per subscription; not applied to secrets and keys); authority_host,
    resource_manager_url, retry_backoff), plus:

        keys_and_secrets: read each vault's secrets and keys through the data plane (default true);
            false reads the vaults only, for a principal with the Reader role alone. The key and
            secret expiry checks then have nothing to check, and their open findings resolve.

    The principal needs Reader on the subscriptions and, for the secrets and keys, the Key Vault
    Reader role (vaults using Azure RBAC) or List permission on keys and secrets in the vault's
    access policies.

    Example config::

        plugins:
          myazkv:
            plugin: cloudmarker.clouds.azkv.AzKV
            params:
              conn_id: azure_audit
    """

    #: _max_recs counts vaults, but each vault is up to three items: list_items applies it to the vaults
    max_recs_caps_items = False

    def __init__(
        self,
        tenant: str | None = None,
        client: str | None = None,
        secret: str | None = None,
        conn_id: str | None = None,
        processes: int = 4,
        threads: int = 8,
        _max_subs: int | None = None,
        _max_recs: int | None = None,
        authority_host: str | None = None,
        resource_manager_url: str | None = None,
        retry_backoff: float = 0.8,
        keys_and_secrets: bool = True,
    ):
        super().__init__(
            tenant,
            client,
            secret,
            conn_id,
            processes,
            threads,
            _max_subs,
            _max_recs,
            authority_host,
            resource_manager_url,
            retry_backoff,
        )
        if not isinstance(keys_and_secrets, bool):
            raise arm.AzureConfigError(f"AzKV param keys_and_secrets must be true or false, not {keys_and_secrets!r}")
        self._keys_and_secrets = keys_and_secrets
        self._data_plane_credential: _OneTokenAtATime | None = None
        self._wrap_lock = threading.Lock()

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> _Clients:
        """A KeyVaultManagementClient for the subscription, and what the data-plane clients share with it."""
        from azure.mgmt.keyvault import KeyVaultManagementClient

        with self._wrap_lock:  # the listings of all subscriptions call this at once
            if self._data_plane_credential is None:
                self._data_plane_credential = _OneTokenAtATime(cred)
        data_plane = {k: v for k, v in kwargs.items() if k not in ("base_url", "credential_scopes")}
        return _Clients(
            KeyVaultManagementClient(cred, subscription_id, **kwargs), self._data_plane_credential, data_plane
        )

    def list_items(self, clients: _Clients, sub: dict) -> Iterator[tuple[str, Any]]:
        """Each vault of the subscription (one paged list call), as up to three items: vault, secrets, keys."""
        kinds = (VAULT, SECRETS, KEYS) if self._keys_and_secrets else (VAULT,)
        for vault in itertools.islice(clients.management.vaults.list_by_subscription(), self._max_recs):
            for kind in kinds:
                yield kind, vault

    def item_name(self, item: Any) -> str:
        """``<vault id> (secrets)``: the vault and which of its items failed."""
        kind, vault = item
        return f"{vault.id} ({kind})"

    def item_records(self, clients: _Clients, item: tuple[str, Any], sub: dict) -> Iterable[dict]:
        """The vault's record, or the records of its secrets or of its keys (one paged data-plane list)."""
        kind, vault = item
        if kind == VAULT:
            return [vault_record(vault, sub)]
        return self._data_plane_records(clients, kind, vault, sub)

    def _data_plane_records(self, clients: _Clients, kind: str, vault: Any, sub: dict) -> list[dict]:
        from azure.core.exceptions import HttpResponseError

        uri = vault.properties.vault_uri
        try:
            if kind == SECRETS:
                from azure.keyvault.secrets import SecretClient

                listing = SecretClient(
                    uri, clients.credential, **clients.data_plane_kwargs
                ).list_properties_of_secrets()
            else:
                from azure.keyvault.keys import KeyClient

                listing = KeyClient(uri, clients.credential, **clients.data_plane_kwargs).list_properties_of_keys()
            return [item_record(kind, props, vault, sub) for props in listing]
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise KeyVaultAccessError(access_message(vault, kind, exc)) from None
            raise


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def vault_record(vault: Any, sub: dict) -> dict:
    """The ``key_vault`` record: ``raw`` is the vault as ARM returns it.

    Soft delete is mandatory since February 2025 and on when the vault does not say (the API's
    default), so a vault is recoverable exactly when purge protection is on and soft delete was not
    explicitly turned off (a vault created before 2025 may still report false).
    """
    props = vault.properties
    soft_delete = getattr(props, "enable_soft_delete", None) is not False
    purge_protection = getattr(props, "enable_purge_protection", None) is True
    return arm.record(
        "key_vault",
        "key_vault",
        vault.as_dict(),
        sub,
        vault.id,
        enable_soft_delete=soft_delete,
        enable_purge_protection=purge_protection,
        recoverable=soft_delete and purge_protection,
    )


#: The property fields copied into ``raw`` (SecretProperties and KeyProperties have no ``as_dict``)
_RAW_FIELDS = (
    "id",
    "name",
    "enabled",
    "expires_on",
    "not_before",
    "created_on",
    "updated_on",
    "recovery_level",
    "recoverable_days",
    "tags",
    "content_type",
    "managed",
)


def item_record(kind: str, props: Any, vault: Any, sub: dict) -> dict:
    """A ``key_vault_secret`` or ``key_vault_key`` record from the listed properties (no value is ever read)."""
    raw = {name: _iso(getattr(props, name)) for name in _RAW_FIELDS if hasattr(props, name)}
    record_type = "key_vault_secret" if kind == SECRETS else "key_vault_key"
    record = arm.record(
        record_type,
        record_type,
        raw,
        sub,
        props.id,
        expiry_set=props.expires_on is not None,
        enabled=props.enabled,
        vault_id=vault.id,
        vault_name=vault.name,
    )
    record["ext"]["reference"] = props.id  # as the original's ext had it (a keyword of arm.record, so set here)
    return record


def _error_codes(exc: Any) -> tuple[str, str]:
    """(code, inner code) of an HTTP error from Key Vault (``{"error": {"code", "innererror": {"code"}}}``)."""
    error = getattr(exc, "error", None)
    inner = getattr(error, "innererror", None)
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    return str(getattr(error, "code", None) or "Forbidden"), str(inner_code or "")


def access_message(vault: Any, kind: str, exc: Any) -> str:
    """What a 403 from a vault's data plane means and what to grant, in one line."""
    code, inner = _error_codes(exc)
    if inner == "ForbiddenByFirewall":
        fix = "the vault's firewall refuses this client's address: allow it under the vault's Networking settings"
    elif getattr(vault.properties, "enable_rbac_authorization", None):
        fix = "give the principal the Key Vault Reader role on the vault (it uses Azure RBAC)"
    else:
        fix = "give the principal the List permission on keys and secrets in the vault's access policies"
    status = f"HTTP 403 {code}{f' {inner}' if inner else ''}"
    return f"Key Vault {vault.name} ({vault.id}) refused to list its {kind} ({status}): {fix}"

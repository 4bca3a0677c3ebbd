"""AzKVSecretNoExpiryEvent: flag enabled Key Vault secrets that never expire.

A secret without an expiration date (a password, a connection string, an API key) stays valid
until someone remembers to change it. Reads the ``key_vault_secret`` records of AzKV
(``ext.enabled``, ``ext.expiry_set``); a disabled secret cannot be read, so it is not reported.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, Problem
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_keyvault_secret_no_expiry",
    title="Azure Key Vault secret has no expiration date",
    severity="medium",
    resource_type="key_vault_secret",
    risk="A secret that never expires stays valid forever: a leaked password or connection string keeps "
    "working, and nothing forces its rotation.",
    description="{cloud} Key Vault secret {reference} is enabled and has no expiration date.",
    remediation="Check whether secret {reference} is still needed; if it is, set an expiration date on "
    "it (and rotate it before then), otherwise disable or delete it.",
    links=(
        "https://learn.microsoft.com/azure/key-vault/secrets/about-secrets",
        "https://learn.microsoft.com/azure/key-vault/general/best-practices",
    ),
    # 8.3.3 for vaults using Azure RBAC, 8.3.4 for vaults using access policies (same check).
    controls={CIS_AZURE: ["8.3.3", "8.3.4"]},
)


class AzKVSecretNoExpiryEvent(AzureEvent):
    """Emit a ``key_vault_secret_no_expiry_event`` for an enabled ``key_vault_secret`` without expiry.

    Params:
        severity: severity of the finding (default: the check's, ``medium``).

    Example config::

        audits:
          myazaudit:
            clouds: [myazkv]
            events: [azkvsecretnoexpiryevent]
    """

    CHECK = CHECK
    EVENT_TYPE = "key_vault_secret_no_expiry_event"
    EXT_TYPE = "key_vault_secret"

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when the secret is enabled (truthy) and its ``expiry_set`` is exactly False."""
        return [Problem()] if ext.get("enabled") and ext.get("expiry_set") is False else []

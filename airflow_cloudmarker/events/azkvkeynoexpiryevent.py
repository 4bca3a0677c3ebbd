"""AzKVKeyNoExpiryEvent: flag enabled Key Vault keys that never expire.

A key without an expiration date stays usable forever: a key that leaked or should have been
rotated keeps working. Reads the ``key_vault_key`` records of AzKV (``ext.enabled``,
``ext.expiry_set``); a disabled key cannot be used, so it is not reported.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, Problem
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_keyvault_key_no_expiry",
    title="Azure Key Vault key has no expiration date",
    severity="medium",
    resource_type="key_vault_key",
    risk="A key that never expires stays usable forever: a leaked or forgotten key keeps decrypting and "
    "signing, and nothing forces its rotation.",
    description="{cloud} Key Vault key {reference} is enabled and has no expiration date.",
    remediation="Check whether key {reference} is still needed; if it is, set an expiration date on it "
    "(and rotate it before then), otherwise disable or delete it.",
    links=(
        "https://learn.microsoft.com/azure/key-vault/keys/about-keys",
        "https://learn.microsoft.com/azure/key-vault/general/best-practices",
    ),
    # 8.3.1 is the control for vaults using Azure RBAC, 8.3.2 for vaults using access policies;
    # the record does not say which model the vault uses, and the check is the same.
    controls={CIS_AZURE: ["8.3.1", "8.3.2"]},
)


class AzKVKeyNoExpiryEvent(AzureEvent):
    """Emit a ``key_vault_key_no_expiry_event`` for an enabled ``key_vault_key`` whose ``expiry_set`` is False.

    Params:
        severity: severity of the finding (default: the check's, ``medium``).

    Example config::

        audits:
          myazaudit:
            clouds: [myazkv]
            events: [azkvkeynoexpiryevent]
    """

    CHECK = CHECK
    EVENT_TYPE = "key_vault_key_no_expiry_event"
    EXT_TYPE = "key_vault_key"

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when the key is enabled (truthy) and its ``expiry_set`` is exactly False."""
        return [Problem()] if ext.get("enabled") and ext.get("expiry_set") is False else []

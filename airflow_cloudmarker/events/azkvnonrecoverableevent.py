"""AzKVNonRecoverableEvent: flag Key Vaults that are not recoverable (no purge protection).

A vault is recoverable when soft delete and purge protection are both on: a deleted vault, key or
secret can then be restored during the retention period, and nobody can purge it early. Since
February 2025 Azure turns soft delete on for every vault, so purge protection decides it. Reads
the ``key_vault`` records of AzKV (``ext.recoverable``; missing counts as not recoverable, as in
the original).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, not_set
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_keyvault_not_recoverable",
    title="Azure Key Vault is not recoverable: purge protection is disabled",
    severity="medium",
    resource_type="key_vault",
    risk="Without purge protection a deleted vault, key or secret can be purged at once, by mistake or by an "
    "attacker: data encrypted with a purged key is lost for good.",
    description="{cloud} Key Vault {reference} is not recoverable: purge protection is not enabled.",
    remediation="Enable purge protection on Key Vault {reference} (soft delete is always on since "
    "February 2025), so deleted keys and secrets can be recovered during the retention period and "
    "cannot be purged before it ends.",
    links=(
        "https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview",
        "https://learn.microsoft.com/azure/key-vault/general/key-vault-recovery",
    ),
    controls={CIS_AZURE: ["8.3.5"]},
)


class AzKVNonRecoverableEvent(AzureEvent):
    """Emit a ``key_vault_non_recoverable_event`` for a ``key_vault`` record whose ``recoverable`` is not set."""

    CHECK = CHECK
    EVENT_TYPE = "key_vault_non_recoverable_event"
    EXT_TYPE = "key_vault"
    FLAG = not_set("recoverable")

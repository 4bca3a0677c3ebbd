"""AzStorageAccountAllowTrustedServicesEvent: flag storage accounts that keep out trusted Azure services.

With network rules in place, trusted Microsoft services (Azure Backup, Event Grid, Monitor, ...)
reach the account only when it lets them bypass the rules; without that, backups, logs and
diagnostics that depend on the account fail, and people open the network wider to make them work.
Reads ``ext.trusted_services_allowed`` of the ``storage_account_properties`` records of
AzStorageAccount (False: an event).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import StorageAccountEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_storage_trusted_services_not_allowed",
    title="Azure storage account does not allow trusted Microsoft services to access it",
    severity="low",
    resource_type="storage_account",
    risk="Azure services that need the account (backup, logging, diagnostics) are blocked by its network "
    "rules, which invites opening the rules to everyone instead.",
    description="{cloud} storage account {reference} does not allow access from trusted Azure services.",
    remediation="Turn on 'Allow Azure services on the trusted services list to access this storage account' "
    "(network rule bypass AzureServices) for storage account {reference}.",
    links=("https://learn.microsoft.com/azure/storage/common/storage-network-security",),
    controls={CIS_AZURE: ["9.3.5"]},
)


class AzStorageAccountAllowTrustedServicesEvent(StorageAccountEvent):
    """Emit a ``storage_account_allow_trusted_services_event`` when ``trusted_services_allowed`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "storage_account_allow_trusted_services_event"
    FLAG = is_false("trusted_services_allowed")

"""AzStorageAccountSecureTransferEvent: flag storage accounts that accept unencrypted HTTP.

Without "secure transfer required" a storage account accepts requests over plain HTTP (and SMB
without encryption), so data and shared access signatures cross the network readable. Reads
``ext.secure_transfer_required`` of the ``storage_account_properties`` records of
AzStorageAccount (False: an event; missing: none). The original had no guard here and crashed on
records without ``ext`` or ``com``; such records give no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import StorageAccountEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_storage_secure_transfer_disabled",
    title="Azure storage account does not require secure transfer",
    severity="high",
    resource_type="storage_account",
    risk="Requests over plain HTTP expose the data and the keys or SAS tokens in them to anyone on the path.",
    description="{cloud} storage account {reference} does not require secure transfer (HTTPS).",
    remediation="Turn on 'Secure transfer required' for storage account {reference}, so it refuses requests "
    "over HTTP and unencrypted SMB.",
    links=("https://learn.microsoft.com/azure/storage/common/storage-require-secure-transfer",),
    controls={CIS_AZURE: ["9.3.4"]},
)


class AzStorageAccountSecureTransferEvent(StorageAccountEvent):
    """Emit a ``storage_account_secure_transfer_event`` when ``secure_transfer_required`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "storage_account_secure_transfer_event"
    FLAG = is_false("secure_transfer_required")

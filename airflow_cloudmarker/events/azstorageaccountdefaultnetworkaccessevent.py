"""AzStorageAccountDefaultNetworkAccessEvent: flag storage accounts that any network may reach.

A storage account whose network rules default to Allow accepts connections from every network,
the whole Internet included; only the keys, tokens and identities stand in the way. Reads
``ext.default_network_access_allowed`` of the ``storage_account_properties`` records of
AzStorageAccount (True: an event).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import StorageAccountEvent, is_true
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_storage_default_network_access_allowed",
    title="Azure storage account allows all networks: its default network access rule is not Deny",
    severity="medium",
    resource_type="storage_account",
    risk="The account is reachable from any network: a leaked key or SAS token is usable from anywhere on the "
    "Internet.",
    description="{cloud} storage account {reference} allows network access by default.",
    remediation="Set the default network access rule of storage account {reference} to Deny, and allow only "
    "the virtual networks and IP ranges that need it.",
    links=("https://learn.microsoft.com/azure/storage/common/storage-network-security",),
    controls={CIS_AZURE: ["9.3.2.3"]},
)


class AzStorageAccountDefaultNetworkAccessEvent(StorageAccountEvent):
    """Emit a ``storage_account_default_network_access_event`` when ``default_network_access_allowed`` is True."""

    CHECK = CHECK
    EVENT_TYPE = "storage_account_default_network_access_event"
    FLAG = is_true("default_network_access_allowed")

"""AzStorageAccount: one record per storage account with its secure-transfer and network-access settings.

Fetch cost: one list call per subscription (plus ``nextLink`` pages) and nothing per account. The
list returns complete ``StorageAccount`` resources, the same model ``get_properties`` returns:
``supportsHttpsTrafficOnly`` and ``networkAcls`` (default action, bypass) are in it, and only the
optional expansions (geo-replication statistics, blob restore status), which no check reads, need
``get_properties``. The original Cloudmarker called ``get_properties`` for every account anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.attrs import attr, items_of

if TYPE_CHECKING:
    from collections.abc import Iterable

#: What Azure applies when an account has no network rule set (or leaves a field of it out)
DEFAULT_ACTION = "Allow"
DEFAULT_BYPASS = "AzureServices"


class AzStorageAccount(arm.ResourceCloud):
    """Read every storage account of every subscription.

    Params: as AzVM: tenant, client, secret or conn_id (service principal; all null for
    DefaultAzureCredential); processes (accepted, unused), threads (calls at once), _max_subs,
    _max_recs (accounts per subscription); authority_host, resource_manager_url, retry_backoff.

    Records: ``ext.record_type: storage_account_properties``, ``com.record_type: storage_account``;
    ``ext.secure_transfer_required``, ``ext.default_network_access_allowed``,
    ``ext.trusted_services_allowed`` (the bypass list contains ``AzureServices``); ``raw`` the
    account as ARM lists it.

    Example config::

        plugins:
          myazstorageaccount:
            plugin: cloudmarker.clouds.azstorageaccount.AzStorageAccount
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A StorageManagementClient for the subscription."""
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """Every storage account of the subscription (complete resources: no per-account call is needed)."""
        return clients.storage_accounts.list()

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The account's record, from the listed account alone."""
        return [storage_account_record(item, sub)]


def storage_account_record(account: Any, sub: dict) -> dict:
    """The ``storage_account_properties`` record of one SDK ``StorageAccount``.

    An account without a network rule set has Azure's default one (allow, bypass AzureServices);
    the original Cloudmarker crashed on it and lost the account.
    """
    rules = attr(account, "network_rule_set")
    action = attr(rules, "default_action") or DEFAULT_ACTION
    bypass = attr(rules, "bypass")
    return arm.record(
        "storage_account_properties",
        "storage_account",
        account.as_dict(),
        sub,
        account.id,
        secure_transfer_required=attr(account, "enable_https_traffic_only"),
        default_network_access_allowed=str(action).lower() == "allow",
        trusted_services_allowed="azureservices" in items_of(DEFAULT_BYPASS if bypass is None else bypass),
    )

"""AzDisk: one record per managed disk, with whether it is attached, its encryption and network access.

The disk list already returns complete disk resources (the same ``Disk`` model as ``disks.get``),
so a subscription costs one list call (plus ``nextLink`` pages) and no per-disk call: the original
Cloudmarker's ``disks.get`` per disk read nothing the list had not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.attrs import attr

if TYPE_CHECKING:
    from collections.abc import Iterable


class AzDisk(arm.ResourceCloud):
    """Read every managed disk of every subscription.

    Params: as AzVM: tenant, client, secret or conn_id (service principal; all null for
    DefaultAzureCredential); processes (accepted, unused), threads (calls at once), _max_subs,
    _max_recs (disks per subscription); authority_host, resource_manager_url, retry_backoff.

    Records: ``ext.record_type: disk``, ``com.record_type: disk``; ``ext.disk_type`` (``attached``
    when ``managed_by`` names a VM, else ``unattached``), ``ext.encryption_type``,
    ``ext.network_access_policy``; ``raw`` the disk as ARM returns it.

    Example config::

        plugins:
          myazdisk:
            plugin: cloudmarker.clouds.azdisk.AzDisk
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A ComputeManagementClient for the subscription."""
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """Every managed disk of the subscription (complete resources: no per-disk call is needed)."""
        return clients.disks.list()

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The disk's record, from the listed disk alone."""
        return [disk_record(item, sub)]


def disk_record(disk: Any, sub: dict) -> dict:
    """The ``disk`` record of one SDK ``Disk``."""
    return arm.record(
        "disk",
        "disk",
        disk.as_dict(),
        sub,
        disk.id,
        disk_type="attached" if attr(disk, "managed_by") else "unattached",
        encryption_type=attr(disk, "encryption", "type"),
        network_access_policy=attr(disk, "network_access_policy"),
    )

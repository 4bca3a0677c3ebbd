"""AzVM: one record per virtual machine with its instance view (power state, disk encryption, extensions).

Deeper than AzCloud and dearer: one instance-view call per VM. The subscriptions are the shards, and
within a fetch task the instance-view calls run on ``threads`` threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.normalize import all_encrypted, disk_encryption, field, power_state

if TYPE_CHECKING:
    from collections.abc import Iterable


class AzVM(arm.ResourceCloud):
    """Read every VM of every subscription with its instance view.

    Params: the same as AzCloud (tenant, client, secret or conn_id; processes, threads, _max_subs,
    _max_recs (VMs per subscription); authority_host, resource_manager_url, retry_backoff).

    Example config::

        plugins:
          myazvm:
            plugin: cloudmarker.clouds.azvm.AzVM
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A ComputeManagementClient for the subscription."""
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """Every VM of the subscription."""
        return clients.virtual_machines.list_all()

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The VM with its instance view (one call)."""
        view = clients.virtual_machines.instance_view(arm.resource_group(item.id), item.name)
        return [self._record(item.as_dict(), view.as_dict(), sub)]

    @staticmethod
    def _record(raw: dict, view: dict, sub: dict) -> dict:
        raw = {**raw, "instance_view": view}
        _, os_encrypted, data_disks = disk_encryption(raw)
        extensions = [e.get("name") for e in field(view, "extensions") or [] if isinstance(e, dict)]
        return arm.record(
            "vm_instance_view",
            "compute",
            raw,
            sub,
            raw.get("id"),
            power_state=power_state(view),
            os_disk_encrypted=os_encrypted,
            all_data_disks_encrypted=all_encrypted(data_disks),
            extensions=extensions,
        )

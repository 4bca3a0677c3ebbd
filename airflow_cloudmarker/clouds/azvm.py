"""AzVM: one record per virtual machine with its instance view (power state, disk encryption, extensions).

Deeper than AzCloud and dearer: one instance-view call per VM. The subscriptions are the shards, and
within a fetch task the instance-view calls run on ``threads`` threads.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import util
from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.normalize import all_encrypted, disk_encryption, field, power_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


def _resource_group(vm_id: str) -> str:
    """The resource group name in an ARM id (``/subscriptions/s/resourceGroups/RG/providers/...``)."""
    parts = vm_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1]


class AzVM(arm.SubscriptionCloud):
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

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield one vm_instance_view record per VM of one subscription (``shard``), or of all of them."""
        from azure.mgmt.compute import ComputeManagementClient

        cred = self._credential()
        if shard is None:
            subs = arm.list_subscriptions(self._settings, cred, self._max_subs, self._transport)
        else:
            subs = [arm.subscription_client(self._settings, cred, self._transport).subscriptions.get(shard).as_dict()]
        kwargs = arm.client_kwargs(self._settings, self._transport)

        def list_vms(sub: dict) -> Callable[[], Iterable[tuple[Any, Any, dict]]]:
            def run() -> Iterator[tuple[Any, Any, dict]]:
                compute = ComputeManagementClient(cred, field(sub, "subscription_id"), **kwargs)
                for vm in itertools.islice(compute.virtual_machines.list_all(), self._max_recs):
                    yield compute, vm, sub

            return run

        # First every subscription's VM list at once, then every instance view at once.
        vms = list(util.stream_parallel([list_vms(sub) for sub in subs], self._threads))
        yield from util.stream_parallel([self._job(*vm) for vm in vms], self._threads)

    def _job(self, compute: Any, vm: Any, sub: dict) -> Callable[[], Iterable[dict]]:
        def run() -> list[dict]:
            view = compute.virtual_machines.instance_view(_resource_group(vm.id), vm.name)
            return [self._record(vm.as_dict(), view.as_dict(), sub)]

        return run

    @staticmethod
    def _record(raw: dict, view: dict, sub: dict) -> dict:
        raw = {**raw, "instance_view": view}
        _, os_encrypted, data_disks = disk_encryption(raw)
        extensions = [e.get("name") for e in field(view, "extensions") or [] if isinstance(e, dict)]
        return {
            "raw": raw,
            "ext": {
                **arm.subscription_ext(sub),
                "record_type": "vm_instance_view",
                "power_state": power_state(view),
                "os_disk_encrypted": os_encrypted,
                "all_data_disks_encrypted": all_encrypted(data_disks),
                "extensions": extensions,
            },
            "com": {"cloud_type": "azure", "record_type": "compute", "reference": raw.get("id")},
        }

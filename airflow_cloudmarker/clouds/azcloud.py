"""AzCloud: every subscription's VMs, network resources, storage accounts and resource groups, plus NSG rules.

One list call per subscription per resource type (the tutorial's promise: few API calls, fast). The
subscriptions are the shards: the DAG packs them into a bounded number of fetch tasks, so Celery workers
share a large tenant and one failing subscription is named without losing the others' records.
"""

from __future__ import annotations

import itertools
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import util
from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.normalize import field, firewall_rule_com, nsg_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: ext.record_type of each resource type, and the common com.record_type where one exists.
COMMON_TYPES = {"virtual_machine": "compute"}


class AzCloud(arm.SubscriptionCloud):
    """Read Azure resources of every subscription the service principal can see.

    Params:
        tenant, client, secret: service principal credentials (tenant id, application id, client secret).
        conn_id: an Airflow connection instead (login = client id, password = secret, extra ``tenant``).
            With neither, DefaultAzureCredential is used (environment, workload/managed identity, Azure CLI).
        processes: accepted for compatibility; mapped fetch tasks (groups of subscriptions) replace processes.
        threads: list calls run at once within one fetch task (default 8).
        _max_subs: read at most this many subscriptions. _max_recs: at most this many records per
            resource type per subscription.
        authority_host, resource_manager_url: login and ARM endpoints for sovereign clouds (or a test server).
        retry_backoff: backoff factor in seconds for retried 5xx responses (429 waits as Retry-After says).

    Example config::

        plugins:
          myazcloud:
            plugin: cloudmarker.clouds.azcloud.AzCloud
            params:
              conn_id: azure_audit
    """

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield the records of one subscription (``shard``), or of every subscription when not sharded."""
        cred = self._credential()
        jobs: list[Callable[[], Iterable[dict]]] = []
        if shard is None:
            for sub in arm.list_subscriptions(self._settings, cred, self._max_subs, self._transport):
                known: Future = Future()
                known.set_result(sub)
                jobs.extend(self._subscription_jobs(cred, field(sub, "subscription_id"), known, None))
        else:
            jobs.extend(self._subscription_jobs(cred, shard, Future(), shard))
        yield from util.stream_parallel(jobs, self._threads)

    def _subscription_jobs(
        self, cred: Any, sub_id: str, sub: Future, fetch: str | None
    ) -> list[Callable[[], Iterable[dict]]]:
        """The subscription record, then one job per resource type: exactly one (paged) list call each.

        In a shard only the id is known: the first job gets the subscription while the list calls run,
        and they wait for it (``sub``) before shaping their records. The first job always starts first
        (the pool runs jobs in order), so a waiting job never waits for a job that was never started.
        """
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient
        from azure.mgmt.storage import StorageManagementClient

        kwargs = arm.client_kwargs(self._settings, self._transport)

        def subscription() -> list[dict]:
            if fetch is not None:
                try:
                    client = arm.subscription_client(self._settings, cred, self._transport)
                    sub.set_result(client.subscriptions.get(fetch).as_dict())
                except BaseException as exc:
                    sub.set_exception(exc)
                    raise
            return [self._record("subscription", sub.result(), sub.result())]

        compute = ComputeManagementClient(cred, sub_id, **kwargs)
        network = NetworkManagementClient(cred, sub_id, **kwargs)
        storage = StorageManagementClient(cred, sub_id, **kwargs)
        resources = ResourceManagementClient(cred, sub_id, **kwargs)
        listers: dict[str, Callable[[], Iterable[Any]]] = {
            "virtual_machine": compute.virtual_machines.list_all,
            "app_gateway": network.application_gateways.list_all,
            "lb": network.load_balancers.list_all,
            "nic": network.network_interfaces.list_all,
            "nsg": network.network_security_groups.list_all,
            "public_ip": network.public_ip_addresses.list_all,
            "storage_account": storage.storage_accounts.list,
            "resource_group": resources.resource_groups.list,
        }

        def job(record_type: str, lister: Callable[[], Iterable[Any]]) -> Callable[[], Iterator[dict]]:
            def run() -> Iterator[dict]:
                for model in itertools.islice(lister(), self._max_recs):
                    raw = model.as_dict()
                    yield self._record(record_type, raw, sub.result())
                    if record_type == "nsg":
                        yield from self._firewall_rules(raw, sub.result())

            return run

        return [subscription] + [job(t, f) for t, f in listers.items()]

    @staticmethod
    def _record(record_type: str, raw: dict, sub: dict) -> dict:
        reference = raw.get("id") or f"/subscriptions/{field(sub, 'subscription_id')}"
        return {
            "raw": raw,
            "ext": {**arm.subscription_ext(sub), "record_type": record_type},
            "com": {"cloud_type": "azure", "record_type": COMMON_TYPES.get(record_type), "reference": reference},
        }

    @staticmethod
    def _firewall_rules(nsg: dict, sub: dict) -> Iterator[dict]:
        for rule in nsg_rules(nsg):
            yield {
                "raw": rule,
                "ext": util.merge_dicts(
                    arm.subscription_ext(sub),
                    {"record_type": "firewall_rule", "nsg_id": nsg.get("id"), "nsg_name": nsg.get("name")},
                ),
                "com": firewall_rule_com(rule),
            }

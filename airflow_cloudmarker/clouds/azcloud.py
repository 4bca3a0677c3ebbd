"""AzCloud: every subscription's resources (VMs, network, storage, MySQL servers, web apps...), NSG rules.

One list call per subscription per resource type (the tutorial's promise: few API calls, fast), and
one per-item call: the ``require_secure_transport`` parameter of each MySQL server (TLS enforcement
is a server parameter on flexible servers). The subscriptions are the shards: the DAG packs them into
a bounded number of fetch tasks, so Celery workers share a large tenant and one failing subscription
is named without losing the others' records. The calls go through ``rest.ArmReader`` (raw ARM JSON,
one small pipeline per shard) rather than a management client per resource family: for thousands of
subscriptions the clients and their models were most of the fetch's CPU.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import util
from airflow_cloudmarker.azure import arm, rdbms, rest
from airflow_cloudmarker.azure.normalize import field, firewall_rule_com, nsg_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

#: The common com.record_type of a resource type where one exists; other types use their ext.record_type.
COMMON_TYPES = {"virtual_machine": "compute", "mysql_server": "rdbms", "subscription": "subscription"}
#: The MySQL server parameter read per server (the only per-item call AzCloud makes).
MYSQL_TLS_PARAMETER = "require_secure_transport"
#: Record type -> (list path after /subscriptions/{id}, API version): one list call each per subscription.
#: The API versions are those of azure-mgmt-compute 39, -network 33, -storage 25, -resource 26 and -web 11.
LISTS = {
    "virtual_machine": ("/providers/Microsoft.Compute/virtualMachines", "2026-04-01"),
    "app_gateway": ("/providers/Microsoft.Network/applicationGateways", "2026-03-01"),
    "lb": ("/providers/Microsoft.Network/loadBalancers", "2026-03-01"),
    "nic": ("/providers/Microsoft.Network/networkInterfaces", "2026-03-01"),
    "nsg": ("/providers/Microsoft.Network/networkSecurityGroups", "2026-03-01"),
    "public_ip": ("/providers/Microsoft.Network/publicIPAddresses", "2026-03-01"),
    "storage_account": ("/providers/Microsoft.Storage/storageAccounts", "2026-09-01"),
    "resource_group": ("/resourcegroups", "2025-04-01"),
    "web_apps": ("/providers/Microsoft.Web/sites", "2025-05-01"),
}
#: MySQL flexible servers and their configurations (azure-mgmt-mysqlflexibleservers 1)
MYSQL_SERVERS = "/providers/Microsoft.DBforMySQL/flexibleServers"
MYSQL_API = "2024-12-30"


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

    Calls per subscription: the subscription, one (paged) list per resource type, and one GET of
    ``{server}/configurations/require_secure_transport`` per MySQL flexible server, the
    only per-item call (flexible servers keep TLS enforcement in that parameter, not on the server).
    A server whose parameter cannot be read is left out; once every other record is out, one
    ``ItemReadError`` names it and fails the fetch task (so its findings are not wrongly resolved).

    Example config::

        plugins:
          myazcloud:
            plugin: cloudmarker.clouds.azcloud.AzCloud
            params:
              conn_id: azure_audit
    """

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield the records of one subscription (``shard``), or of every subscription when not sharded."""
        reader = self.arm_reader()
        failures = _Failures()
        jobs: list[Callable[[], Iterable[dict]]] = []
        if shard is None:
            for sub in arm.list_subscriptions(reader, self._max_subs):
                known: Future = Future()
                known.set_result(sub)
                jobs.extend(self._subscription_jobs(reader, field(sub, "subscription_id"), known, None, failures))
        else:
            jobs.extend(self._subscription_jobs(reader, shard, Future(), shard, failures))
        yield from util.stream_parallel(jobs, self._threads)
        failures.raise_if_any(type(self).__name__)

    def _subscription_jobs(
        self, reader: rest.ArmReader, sub_id: str, sub: Future, fetch: str | None, failures: _Failures
    ) -> list[Callable[[], Iterable[dict]]]:
        """The subscription record, then one job per resource type: exactly one (paged) list call each.

        In a shard only the id is known: the first job gets the subscription while the list calls run,
        and they wait for it (``sub``) before shaping their records. The first job always starts first
        (the pool runs jobs in order), so a waiting job never waits for a job that was never started.
        The MySQL job comes next: it makes one more call per server after its list, so it starts early.
        Every call goes through ``reader`` (records keep ARM's JSON as it came).
        """
        subscription_path = rest.path("subscriptions", sub_id)

        def subscription() -> list[dict]:
            if fetch is not None:
                try:
                    sub.set_result(arm.get_subscription(reader, fetch))
                except BaseException as exc:
                    sub.set_exception(exc)
                    raise
            return [self._record("subscription", sub.result(), sub.result())]

        def job(record_type: str, list_path: str, api_version: str) -> Callable[[], Iterator[dict]]:
            def run() -> Iterator[dict]:
                listed = reader.list(subscription_path + list_path, api_version)
                pages = arm.unless_unregistered(listed, f"AzCloud subscription {sub_id} {record_type}")
                for raw in itertools.islice(pages, self._max_recs):
                    yield self._record(record_type, raw, sub.result())
                    if record_type == "nsg":
                        yield from self._firewall_rules(raw, sub.result())

            return run

        def mysql_servers() -> Iterator[dict]:
            listed = reader.list(subscription_path + MYSQL_SERVERS, MYSQL_API)
            servers = arm.unless_unregistered(listed, f"AzCloud subscription {sub_id} mysql_server")
            raws = list(itertools.islice(servers, self._max_recs))
            tls_of = functools.partial(self._mysql_tls_enforced, reader)
            for raw, tls in _each_concurrently(tls_of, raws, self._threads):
                failures.count()
                if isinstance(tls, Exception):
                    failures.add(raw.get("id") or str(raw.get("name")), tls)
                    continue
                record = self._record("mysql_server", raw, sub.result())
                record["com"]["tls_enforced"] = tls
                yield record

        return [subscription, mysql_servers] + [job(t, p, v) for t, (p, v) in LISTS.items()]

    @staticmethod
    def _mysql_tls_enforced(reader: rest.ArmReader, server: dict) -> bool | None:
        """``require_secure_transport`` of one MySQL flexible server (None when the server has no such parameter)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            parameter = reader.get(rest.resource_path(server["id"], "configurations", MYSQL_TLS_PARAMETER), MYSQL_API)
        except ResourceNotFoundError:
            return None
        return rdbms.tls_enforced({MYSQL_TLS_PARAMETER: field(parameter, "value")})

    @staticmethod
    def _record(record_type: str, raw: dict, sub: dict) -> dict:
        return arm.record(record_type, COMMON_TYPES.get(record_type, record_type), raw, sub, raw.get("id"))

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


def _each_concurrently(read: Callable[[Any], Any], items: list, threads: int) -> Iterator[tuple[Any, Any]]:
    """``(item, read(item))`` in the order of ``items``, up to ``threads`` reads at once; an error is its value.

    A subscription's MySQL servers each need one more call; read one after another, a subscription
    with many servers would take that many round trips.
    """

    def attempt(item: Any) -> Any:
        try:
            return read(item)
        except Exception as exc:
            return exc

    if len(items) <= 1 or threads <= 1:
        yield from ((item, attempt(item)) for item in items)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="cloudmarker-mysql") as pool:
        yield from zip(items, pool.map(attempt, items), strict=True)


class _Failures:
    """The MySQL servers of one read whose parameter could not be read (filled from several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.names: list[str] = []
        self.first: BaseException | None = None
        self.total = 0

    def count(self) -> None:
        with self._lock:
            self.total += 1

    def add(self, name: str, exc: BaseException) -> None:
        log.warning("AzCloud: could not read %s of %s: %s", MYSQL_TLS_PARAMETER, name, _one_line(exc))
        with self._lock:
            self.names.append(name)
            self.first = self.first or exc

    def raise_if_any(self, plugin: str) -> None:
        if not self.names:
            return
        names = sorted(self.names)
        raise arm.ItemReadError(
            f"{plugin}: the {MYSQL_TLS_PARAMETER} parameter of {len(names)} of {self.total} MySQL servers could "
            f"not be read ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}): {_one_line(self.first)}"
        )


def _one_line(exc: BaseException | None) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"

"""Shared Azure plumbing for the Azure cloud plugins: credentials, clients, subscriptions, parallel reads.

Kept apart from the plugins so both read params, authenticate and page through Azure Resource Manager
(ARM) the same way. The SDK is imported lazily: constructing a plugin (done at DAG parse time for
param checks) must not import or touch the network.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import itertools
import logging
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_cloudmarker import util
from airflow_cloudmarker.azure import rest
from airflow_cloudmarker.azure.normalize import field

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

DEFAULT_ARM_URL = "https://management.azure.com"
#: Microsoft Entra hosts MSAL knows (public cloud, China, US Government)
KNOWN_AUTHORITY_HOSTS = {"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"}
#: Loggers that would otherwise log every HTTP request and response at INFO
QUIET_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "msal",
    # it warns "We are registering for you" before the registration our transport refuses
    "azure.mgmt.core.policies._base",
)
#: ARM's error code for a list call of a resource provider the subscription has not registered
UNREGISTERED = "MissingSubscriptionRegistration"
#: The SDK's automatic resource provider registration (a POST; an audit never writes)
REGISTER_PATH = re.compile(r"/subscriptions/[^/]+/providers/[^/]+/register$", re.IGNORECASE)
#: azure-identity logs a multi-line warning for each failed credential; we raise one clear error instead


class AzureConfigError(ValueError):
    """A param problem the user must fix in the config; the message names the param."""


class AzureAuthError(RuntimeError):
    """Azure rejected the credentials (or none could be found); the message says which and how to fix it."""


@dataclass(frozen=True)
class AzureSettings:
    """Checked connection params of an Azure plugin (the secret is kept out of ``repr``)."""

    plugin: str
    tenant: str | None
    client: str | None
    secret: str | None
    conn_id: str | None
    authority_host: str | None
    resource_manager_url: str
    retry_backoff: float

    def __repr__(self) -> str:
        return f"AzureSettings(plugin={self.plugin!r}, tenant={self.tenant!r}, client={self.client!r}, secret=***)"


def _check_int(plugin: str, name: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AzureConfigError(f"{plugin} param {name} must be an integer >= {minimum}, not {value!r}")
    return value


def check_limits(
    plugin: str, processes: Any, threads: Any, max_subs: Any, max_recs: Any
) -> tuple[int, int | None, int | None]:
    """Check the concurrency/limit params; return (threads, max_subs, max_recs)."""
    _check_int(plugin, "processes", processes, 1)
    return (
        _check_int(plugin, "threads", threads, 1) or 1,
        _check_int(plugin, "_max_subs", max_subs, 0),
        _check_int(plugin, "_max_recs", max_recs, 0),
    )


def settings(
    plugin: str,
    tenant: str | None,
    client: str | None,
    secret: str | None,
    conn_id: str | None,
    authority_host: str | None,
    resource_manager_url: str | None,
    retry_backoff: float,
) -> AzureSettings:
    """Check the credential params without any network access and mask the secret."""
    util.mask_secret(secret)
    given = {"tenant": tenant, "client": client, "secret": secret}
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise AzureConfigError(f"{plugin} param {name} must be a string, not {type(value).__name__}")
    if conn_id is None and any(v for v in given.values()):
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise AzureConfigError(
                f"{plugin} param {', '.join(missing)} is null: set tenant, client and secret together "
                "(or use conn_id with an Airflow connection, or leave all three null to use DefaultAzureCredential)"
            )
    if isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float)) or retry_backoff < 0:
        raise AzureConfigError(f"{plugin} param retry_backoff must be a number of seconds >= 0, not {retry_backoff!r}")
    url = (resource_manager_url or DEFAULT_ARM_URL).rstrip("/")
    if not url.startswith("https://"):
        raise AzureConfigError(f"{plugin} param resource_manager_url must be an https:// URL, not {url!r}")
    return AzureSettings(plugin, tenant, client, secret, conn_id, authority_host, url, float(retry_backoff))


def _from_connection(s: AzureSettings) -> tuple[str, str, str]:
    """(tenant, client, secret) from an Airflow connection: login = client id, password = secret, extra tenant."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(s.conn_id)
    extra = conn.extra_dejson or {}
    tenant = extra.get("tenant") or extra.get("tenantId") or extra.get("tenant_id") or s.tenant
    util.mask_secret(conn.password)
    missing = [n for n, v in (("login (client id)", conn.login), ("password (secret)", conn.password)) if not v]
    if not tenant:
        missing.append('extra "tenant"')
    if missing:
        raise AzureConfigError(f"{s.plugin} param conn_id {s.conn_id!r}: the connection has no {', '.join(missing)}")
    return tenant, conn.login, conn.password


def credential(s: AzureSettings) -> Any:
    """Build the azure-identity credential the params ask for (no network yet)."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    for name in QUIET_LOGGERS:
        quiet = name in ("azure.identity", "azure.mgmt.core.policies._base")
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.WARNING)
    kwargs: dict[str, Any] = {}
    if s.authority_host:
        kwargs["authority"] = s.authority_host
        # MSAL validates unknown authorities against login.microsoftonline.com; a private or test
        # authority must not send traffic there.
        kwargs["disable_instance_discovery"] = urlsplit(s.authority_host).hostname not in KNOWN_AUTHORITY_HOSTS
    if s.conn_id:
        tenant, client, secret = _from_connection(s)
        return ClientSecretCredential(tenant, client, secret, **kwargs)
    if s.tenant and s.client and s.secret:
        return ClientSecretCredential(s.tenant, s.client, s.secret, **kwargs)
    return DefaultAzureCredential(**kwargs)


def scope(s: AzureSettings) -> str:
    """The OAuth scope for ARM at ``resource_manager_url``."""
    return s.resource_manager_url + "/.default"


def authenticate(s: AzureSettings) -> Any:
    """Return a credential that has just obtained an ARM token, or raise one clear ``AzureAuthError``.

    Getting the token up front turns the SDK's long credential-chain errors into one message; the
    credential caches the token, so the list calls that follow do not ask again.
    """
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    cred = credential(s)
    uses_default = not s.conn_id and not (s.tenant and s.client and s.secret)
    try:
        cred.get_token(scope(s))
    except (CredentialUnavailableError, ClientAuthenticationError) as exc:
        # Not chained: an authentication error keeps the token request, whose body holds the client secret.
        first_line = (str(getattr(exc, "message", None) or exc).strip().splitlines() or [""])[0][:300]
        if uses_default:
            raise AzureAuthError(
                f"{s.plugin} params tenant, client and secret are null and no default Azure credential is available "
                "(environment variables, workload or managed identity, Azure CLI login): set tenant, client and "
                f"secret, or conn_id to an Airflow connection ({first_line})"
            ) from None
        who = f"connection {s.conn_id!r}" if s.conn_id else f"client {s.client!r} in tenant {s.tenant!r}"
        if "AADSTS" in first_line or getattr(exc, "status_code", None) in (400, 401):
            raise AzureAuthError(
                f"{s.plugin}: Azure rejected the credentials of {who} ({first_line}); check tenant, client and secret"
            ) from None
        raise AzureAuthError(f"{s.plugin}: Azure authentication of {who} failed: {first_line}") from None
    return cred


#: The longest ``Retry-After`` the gate honours for other calls (azure-core's retry policy caps its own waits too).
MAX_RETRY_AFTER_SECONDS = 60.0
_SUBSCRIPTION_IN_URL = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)


class ThrottleGate:
    """``Retry-After`` per subscription: after a 429, every call to that subscription waits it out.

    ARM throttles reads per subscription and principal (a bucket of 250 requests, refilled at 25 a
    second). azure-core's retry policy makes the throttled call wait as ``Retry-After`` says; the
    gate makes the other threads calling the same subscription wait too, instead of emptying its
    bucket further, while calls to other subscriptions go on at once: one hot subscription slows
    only itself. One gate per process, shared by every plugin instance (a shard each).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, subscription: str, seconds: float) -> None:
        """No call to ``subscription`` before ``seconds`` from now (a later deadline already set stays)."""
        until = self._clock() + max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))
        with self._lock:
            if until > self._until.get(subscription, 0.0):
                self._until[subscription] = until

    def delay(self, subscription: str) -> float:
        """Seconds a call to ``subscription`` must still wait (0 when it may go now)."""
        with self._lock:
            until = self._until.get(subscription)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._until[subscription]
                return 0.0
            return left

    def wait(self, subscription: str) -> float:
        """Wait until a call to ``subscription`` may go; returns the seconds waited."""
        left = self.delay(subscription)
        if left > 0:
            self._sleep(left)
        return left


GATE = ThrottleGate()


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()) if when.tzinfo else None


def subscription_of(url: str) -> str | None:
    """The subscription id an ARM URL addresses, or None (a tenant-level call such as the subscription list)."""
    found = _SUBSCRIPTION_IN_URL.search(url)
    return found.group(1).lower() if found else None


class CallCounter:
    """One plugin instance's ARM calls: each attempt counted (retries included), a 429 held per subscription.

    Shared by the instance's transports (the SDK clients' and ``rest.ArmReader``'s), so
    ``api_counts`` counts them all.
    """

    def __init__(self, gate: ThrottleGate = GATE):
        self.gate = gate
        self.calls = 0
        self.throttled = 0
        self._lock = threading.Lock()

    def call(self, request: Any, send: Callable[[], Any]) -> Any:
        """Wait while the request's subscription is held, ``send()`` it, count it; hold it after a 429."""
        sub = subscription_of(request.url)
        if sub:
            self.gate.wait(sub)
        response = send()
        throttled = response.status_code == 429
        with self._lock:
            self.calls += 1
            self.throttled += throttled
        if throttled and sub:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            self.gate.hold(sub, 1.0 if wait is None else wait)
        return response


@functools.cache
def _counting_transport_class() -> type:
    """``RequestsTransport`` that counts calls and 429s and keeps the per-subscription gate (built on first use)."""
    from azure.core.pipeline.transport import RequestsTransport

    class CountingTransport(RequestsTransport):
        """Every attempt passes here, retries included: counted by ``counter``, which holds a throttled subscription."""

        def __init__(self, *args: Any, counter: CallCounter | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.counter = counter or CallCounter()

        @property
        def calls(self) -> int:
            return self.counter.calls

        @property
        def throttled(self) -> int:
            return self.counter.throttled

        def send(self, request: Any, **kwargs: Any) -> Any:
            if request.method == "POST" and REGISTER_PATH.search(urlsplit(request.url).path):
                return _refused(request)
            return self.counter.call(request, lambda: RequestsTransport.send(self, request, **kwargs))

    return CountingTransport


def _refused(request: Any) -> Any:
    """A 403 answer, made here, to the SDK's attempt to register a resource provider (never sent)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransportResponse

    response = requests.Response()
    response.status_code = 403
    response.url = request.url
    response.headers["Content-Type"] = "application/json"
    response._content = (
        b'{"error": {"code": "ReadOnlyAudit", "message": "Cloudmarker never registers resource providers"}}'
    )
    return RequestsTransportResponse(request, response)


def http_session(pool_size: int) -> Any:
    """A requests session whose connection pool keeps ``pool_size`` connections alive."""
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    return session


def transport(threads: int, session: Any = None, counter: CallCounter | None = None) -> Any:
    """One HTTP transport shared by every management client of a plugin instance.

    Each client would otherwise open its own connection pool (a TLS handshake per client and
    thread); one pool keeps connections alive across subscriptions and types (``session``: the
    process-wide one of ``shared_connection``, else a new pool sized for ``threads``). It counts
    this instance's calls and throttled calls (``calls``, ``throttled``) and honours ``Retry-After``
    per subscription (``ThrottleGate``).
    """
    return _counting_transport_class()(
        session=session or http_session(threads + 4), session_owner=False, counter=counter
    )


#: How long a process reuses an authenticated credential and its connections (a rotated secret or
#: connection is picked up after at most this long; the credential refreshes its own tokens).
SHARED_SECONDS = 15 * 60


@dataclass
class _Shared:
    credential: Any
    session: Any
    arm: Any  # http.ArmConnections
    since: float

    def close(self) -> None:
        self.session.close()
        self.arm.close()


class SharedConnections:
    """The authenticated credential and HTTP connection pool, once per process and set of params.

    The framework reads each shard (subscription) on a fresh plugin instance, many in one fetch
    task; authenticating (an MSAL application and a token request) and opening TLS connections
    again for each cost more CPU than the shard's own calls. Instances with equal settings share
    them here instead: the first one authenticates (the others wait for it, so one token is asked
    for, not one per thread), and they go on for ``SHARED_SECONDS``. A failed authentication is
    not kept: the next instance tries again and raises its own clear error. Only the credential
    and the pools are shared (the requests session of the SDK clients, the urllib3 pools of
    ``rest.ArmReader``); each instance keeps its own transports (its own call counts).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[AzureSettings, int], _Shared] = {}
        self._key_locks: dict[tuple[AzureSettings, int], threading.Lock] = {}

    def get(self, s: AzureSettings, pool_size: int) -> tuple[Any, Any, Any]:
        """(credential, requests session, ``http.ArmConnections``) for ``s``: authenticated now, or earlier."""
        from airflow_cloudmarker.azure import http

        key = (s, pool_size)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry.since >= SHARED_SECONDS:
                cred = authenticate(s)  # raises: nothing is kept, the next instance tries again
                fresh = _Shared(cred, http_session(pool_size), http.ArmConnections(pool_size), self._clock())
                self._entries[key] = fresh
                if entry is not None:
                    entry.close()  # after the new one: an instance still using it gets new connections
                entry = fresh
            return entry.credential, entry.session, entry.arm

    def clear(self) -> None:
        """Close and forget every shared credential and pool (tests; a long-lived process may call it)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.close()
            if hasattr(entry.credential, "close"):
                entry.credential.close()


SHARED = SharedConnections()


def client_kwargs(s: AzureSettings, shared_transport: Any = None) -> dict[str, Any]:
    """Keyword arguments for every management client: endpoint, scope, retry behaviour, transport.

    azure-core's retry policy retries 429 and 5xx and waits as ``Retry-After`` asks; ``retry_backoff``
    sets the exponential backoff for responses that do not say how long to wait.
    """
    kwargs = {
        "base_url": s.resource_manager_url,
        "credential_scopes": [scope(s)],
        "retry_backoff_factor": s.retry_backoff,
        "retry_backoff_max": 60,
    }
    if shared_transport is not None:
        kwargs["transport"] = shared_transport
    return kwargs


def subscription_ext(sub: dict) -> dict:
    """The ``ext`` fields every Azure record carries for its subscription."""
    return {
        "cloud_type": "azure",
        "subscription_id": field(sub, "subscription_id"),
        "subscription_name": field(sub, "display_name"),
        "subscription_state": field(sub, "state"),
        "tenant_id": field(sub, "tenant_id"),
    }


def list_subscriptions(reader: rest.ArmReader, max_subs: int | None) -> list[dict]:
    """Every subscription the principal can see (ARM's JSON), at most ``max_subs`` (no page past them is read)."""
    return list(itertools.islice(reader.list(rest.SUBSCRIPTIONS, rest.SUBSCRIPTIONS_API), max_subs))


def get_subscription(reader: rest.ArmReader, subscription_id: str) -> dict:
    """One subscription (ARM's JSON)."""
    return reader.get(rest.path("subscriptions", subscription_id), rest.SUBSCRIPTIONS_API)


class SubscriptionCloud:
    """Base of the Azure cloud plugins: params, lazy authentication, and subscriptions as shards.

    The subscriptions are the shards: the DAG maps one fetch task per subscription, so Celery
    workers share a large tenant and one failing subscription fails only its own task.
    """

    #: at most this many subscriptions are fetched at once (one mapped task each)
    max_parallel_shards = 8

    def __init__(
        self,
        tenant: str | None = None,
        client: str | None = None,
        secret: str | None = None,
        conn_id: str | None = None,
        processes: int = 4,
        threads: int = 8,
        _max_subs: int | None = None,
        _max_recs: int | None = None,
        authority_host: str | None = None,
        resource_manager_url: str | None = None,
        retry_backoff: float = 0.8,
    ):
        name = type(self).__name__
        self._settings = settings(
            name, tenant, client, secret, conn_id, authority_host, resource_manager_url, retry_backoff
        )
        self._threads, self._max_subs, self._max_recs = check_limits(name, processes, threads, _max_subs, _max_recs)
        self._cred: Any = None
        self._transport: Any = None
        self._reader: rest.ArmReader | None = None

    def _credential(self) -> Any:
        """The authenticated credential (shared by the instances of this process with the same params).

        Sets the instance's two ways to ARM, which count into one ``CallCounter``: ``_transport``
        for the SDK clients, and ``arm_reader()`` (plain GETs on ``http.ArmTransport``).
        """
        if self._cred is None:
            from airflow_cloudmarker.azure import http

            # Sized for every shard a fetch task reads at once, each on ``threads`` threads.
            pool_size = self._threads * max(1, self.max_parallel_shards) + 4
            self._cred, session, connections = SHARED.get(self._settings, pool_size)
            counter = CallCounter()
            self._transport = transport(self._threads, session, counter)
            self._reader = rest.ArmReader(
                self._settings.resource_manager_url,
                self._cred,
                http.arm_transport(connections, counter),
                self._settings.retry_backoff,
            )
        return self._cred

    def arm_reader(self) -> rest.ArmReader:
        """This instance's ``rest.ArmReader`` (authenticating first, if not yet)."""
        self._credential()
        assert self._reader is not None
        return self._reader

    def shards(self) -> list[str]:
        """The subscription ids to fetch, one mapped task each."""
        return [field(sub, "subscription_id") for sub in list_subscriptions(self.arm_reader(), self._max_subs)]

    def api_counts(self) -> dict[str, int]:
        """ARM calls of this instance (every attempt, token requests excluded) and how many were throttled (429)."""
        if self._transport is None:
            return {}
        return {"api_calls": self._transport.calls, "throttled_calls": self._transport.throttled}

    def done(self) -> None:
        """Let go of the credential and transport (the shared ones stay open for the next shard)."""
        self._cred = self._transport = self._reader = None


def record(record_type: str, common_type: str, raw: Any, sub: dict, reference: Any, **ext: Any) -> dict:
    """One Azure record: ``raw`` as read, ``ext`` with the subscription fields, ``com`` with its type.

    Every record gets a ``com.record_type`` (the original left it out for storage accounts and web
    apps) and a ``com.reference`` (the resource id, or the subscription's when there is none).
    """
    return {
        "raw": raw,
        "ext": {**subscription_ext(sub), "record_type": record_type, **ext},
        "com": {
            "cloud_type": "azure",
            "record_type": common_type,
            "reference": reference or f"/subscriptions/{field(sub, 'subscription_id')}",
        },
    }


def resource_group(resource_id: str) -> str:
    """The resource group name in an ARM id (``/subscriptions/s/resourceGroups/RG/providers/...``)."""
    parts = str(resource_id).split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" not in lowered or lowered.index("resourcegroups") + 1 >= len(parts):
        raise ValueError(f"no resource group in the resource id {resource_id!r}")
    return parts[lowered.index("resourcegroups") + 1]


class ItemReadError(RuntimeError):
    """Some items of a subscription could not be read; the message names them and the first cause."""


class ResourceCloud(SubscriptionCloud):
    """Base of the Azure plugins that list one resource type per subscription, then read each item.

    A subclass says how to build its SDK clients for a subscription (``clients``), what to list
    (``list_items``: one paged list call) and how to turn one listed item into records
    (``item_records``: the per-item calls the data needs). The listings of all subscriptions run
    at once, then the per-item reads, both on ``threads`` threads; ``_max_recs`` caps the listed
    items per subscription. An item whose read fails does not stop the others: once every other
    item is read, one ``ItemReadError`` names the failed items and fails the fetch task (so the
    audit's findings for this cloud stay open rather than being wrongly resolved).
    """

    #: True: ``_max_recs`` caps the listed items. A plugin whose items are not what ``_max_recs``
    #: counts (AzKV lists up to three items per vault) sets False and applies it in ``list_items``.
    max_recs_caps_items = True

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """The SDK client(s) for one subscription (any object; passed back to the two methods below)."""
        raise NotImplementedError

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """The items of one subscription: one (paged) list call."""
        raise NotImplementedError

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The records of one listed item (it may make the per-item calls the data needs)."""
        raise NotImplementedError

    def item_name(self, item: Any) -> str:
        """How an item is named in an error message (its resource id)."""
        return str(getattr(item, "id", None) or (item.get("id") if isinstance(item, dict) else None) or item)

    def subscriptions(self, cred: Any, shard: str | None) -> list[dict]:
        """The subscription dict of ``shard``, or every subscription when not sharded."""
        if shard is None:
            return list_subscriptions(self.arm_reader(), self._max_subs)
        return [get_subscription(self.arm_reader(), shard)]

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield the records of one subscription (``shard``), or of every subscription when not sharded."""
        cred = self._credential()
        kwargs = client_kwargs(self._settings, self._transport)
        subs = self.subscriptions(cred, shard)
        failed: list[str] = []
        errors: list[BaseException] = []
        listed = [0]

        def list_subscription(pipeline: _Pipeline, sub: dict) -> None:
            clients = self.clients(cred, field(sub, "subscription_id"), kwargs)
            what = f"{type(self).__name__} subscription {field(sub, 'subscription_id')}"
            cap = self._max_recs if self.max_recs_caps_items else None
            for item in itertools.islice(unless_unregistered(self.list_items(clients, sub), what), cap):
                listed[0] += 1
                pipeline.submit(read_item, clients, item, sub)

        def read_item(pipeline: _Pipeline, clients: Any, item: Any, sub: dict) -> None:
            try:
                pipeline.emit(list(self.item_records(clients, item, sub)))
            except Exception as exc:
                name = self.item_name(item)
                log.warning("%s: could not read %s: %s", type(self).__name__, name, _one_line(exc))
                failed.append(name)
                errors.append(exc)

        pipeline = _Pipeline(self._threads)
        yield from pipeline.run([(list_subscription, (sub,)) for sub in subs])
        if failed:
            raise ItemReadError(
                f"{type(self).__name__}: {len(failed)} of {listed[0]} items could not be read "
                f"({', '.join(sorted(failed)[:5])}{', ...' if len(failed) > 5 else ''}): {_one_line(errors[0])}"
            )


class _Pipeline:
    """Listing and per-item reads on one pool of threads, each item read as soon as it is listed.

    Reading every subscription's list before any item would cost one more round of waiting on the
    network; here a listing job submits the item reads as it pages, so the threads stay busy. A job
    error (a list call that fails) stops the pipeline and is raised in the consumer; item jobs catch
    their own errors. Records are yielded as item jobs ``emit`` them.
    """

    def __init__(self, threads: int):
        self._threads = max(1, threads)
        self._out: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._stopped = threading.Event()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Run ``job(pipeline, *args)`` on the pool (from the consumer or from another job)."""
        assert self._pool is not None
        with self._lock:
            self._outstanding += 1
        self._pool.submit(self._run, job, args)

    def emit(self, records: list[dict]) -> None:
        """Hand records to the consumer."""
        self._out.put(("records", records))

    def _run(self, job: Callable[..., None], args: tuple) -> None:
        try:
            if not self._stopped.is_set():
                job(self, *args)
        except BaseException as exc:
            self._out.put(("error", exc))
        finally:
            with self._lock:
                self._outstanding -= 1
                finished = self._outstanding == 0
            if finished:
                self._out.put(("end", None))

    def run(self, jobs: list[tuple[Callable[..., None], tuple]]) -> Iterator[dict]:
        """Start ``jobs`` and yield every record they emit, until every job (and the jobs they started) ended."""
        if not jobs:
            return
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="cloudmarker")
        try:
            for job, args in jobs:
                self.submit(job, *args)
            while True:
                kind, value = self._out.get()
                if kind == "records":
                    yield from value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            self._stopped.set()
            self._pool.shutdown(wait=True, cancel_futures=True)


def error_code(exc: BaseException) -> str | None:
    """The ARM error code of an ``HttpResponseError`` (``AuthorizationFailed``...), or None."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    text = str(exc)
    return UNREGISTERED if UNREGISTERED in text else None


def unless_unregistered(pages: Iterable[Any], what: str) -> Iterator[Any]:
    """Yield what a list call lists; a subscription not registered for the resource provider lists nothing.

    ARM answers a list call for a resource provider (``Microsoft.DBforMySQL``, ``Microsoft.Web``...)
    that the subscription never registered with 409 ``MissingSubscriptionRegistration``: such a
    subscription has none of those resources, so this is no failure. (Our transport refuses the
    SDK's automatic registration, which would be a write: an audit only reads.)
    """
    from azure.core.exceptions import HttpResponseError

    try:
        yield from pages
    except HttpResponseError as exc:
        if error_code(exc) != UNREGISTERED:
            raise
        log.info("%s: the resource provider is not registered, so it has none of these resources", what)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"

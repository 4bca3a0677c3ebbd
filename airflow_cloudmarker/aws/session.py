"""AWS sessions and clients through the amazon provider's ``AwsBaseHook``: one session per account, a client per region.

The connection (``conn_id``) is turned into a boto3 session by ``AwsBaseHook``: its keys, its
``role_arn``, a profile, or the default chain (environment, instance role), its ``endpoint_url``
and ``service_config`` endpoints, its ``config_kwargs`` and ``verify``. Member accounts of an
organization are read through a role assumed from that session (``role_name``); each account's
assumed credentials are masked as soon as they arrive and kept for the process (``_SESSIONS``),
so the shards of one account that a fetch task reads at once share one AssumeRole call. The hook
of a connection is kept for the process too (``_HOOKS``): a fetch task builds a plugin instance
per shard, and each would otherwise look the connection up again.

All the sessions of a process use one botocore data loader, and their clients share one service
model and client class per service (airflow_cloudmarker.aws.models): a client per account and
region is then about 1.5 ms of CPU instead of 7 ms plus the shapes of its first calls. A boto3
session is not thread-safe, so clients are built from it one at a time (``_session_lock``); the
clients themselves are.

Every client counts its API requests (retries included) and the throttled ones (``ApiCounter``),
which AwsCloud reports through ``api_counts()``. Retries use botocore's ``adaptive`` mode (a
client-side rate limiter on top of the standard backoff) unless the connection sets ``retries``
in its ``config_kwargs``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_cloudmarker import util
from airflow_cloudmarker.aws import models

log = logging.getLogger(__name__)

RETRY_MODES = ("adaptive", "standard", "legacy")
#: Error codes of throttled requests, across the APIs AwsCloud calls (botocore retries these).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    }
)
#: Assumed sessions are renewed this long before their credentials expire.
RENEW_BEFORE_SECONDS = 300
ASSUME_ROLE_SECONDS = 3600
DEFAULT_REGION = "us-east-1"


class AwsConfigError(ValueError):
    """A connection or param AwsCloud cannot use; the message names the plugin, the setting and the fix."""


class AwsAccessError(RuntimeError):
    """AWS refused what a shard needs (assuming the member account's role); names the account and role."""


class ApiCounter:
    """API requests and throttled requests of the clients it is attached to (from several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.throttled = 0

    def attach(self, client: Any) -> Any:
        """Count the requests ``client`` sends and the throttling errors it gets back; return the client."""
        client.meta.events.register("before-send", self._on_send)
        client.meta.events.register("needs-retry", self._on_response)
        return client

    def _on_send(self, **kwargs: Any) -> None:
        with self._lock:
            self.calls += 1

    def _on_response(self, response: Any = None, **kwargs: Any) -> None:
        """Look at each response (never decides about the retry: returns None)."""
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else None
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if code in THROTTLING_CODES:
            with self._lock:
                self.throttled += 1
            log.info("AWS throttled %s (%s); botocore retries it", kwargs.get("event_name", "a call"), code)


#: (conn_id, account, role_name) -> (boto3 session, the time its credentials expire).
_SESSIONS: dict[tuple[str, str, str], tuple[Any, float]] = {}
_SESSIONS_LOCK = threading.RLock()
_ACCOUNT_LOCKS: dict[tuple, threading.Lock] = {}


def _account_lock(key: tuple) -> threading.Lock:
    """One lock per cache key, so threads wait only for the account they need."""
    with _SESSIONS_LOCK:
        return _ACCOUNT_LOCKS.setdefault(key, threading.Lock())


#: conn_id -> ((the connection's session, its account, partition), when to identify it again).
_OWN: dict[str, tuple[tuple[Any, str, str], float]] = {}
#: The connection's own session is reused this long (its credentials refresh themselves when they can).
OWN_SESSION_SECONDS = 900
#: (conn_id, account) -> the account's alias (None when it has none or may not be read).
_ALIASES: dict[tuple[str, str], str | None] = {}
#: conn_id -> (the connection's AwsBaseHook, when to look the connection up again).
_HOOKS: dict[str, tuple[Any, float]] = {}
#: The botocore data loader of every session of the process (it keeps the parsed JSON models).
_LOADER: list[Any] = []
#: boto3 session -> the lock its clients are built under (a session is not thread-safe).
_SESSION_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reset() -> None:
    """Forget every session, identity, alias, hook and shared model, as a new fetch task process starts."""
    with _SESSIONS_LOCK:
        for cache in (_SESSIONS, _OWN, _ALIASES, _HOOKS, _LOADER, _ACCOUNT_LOCKS):
            cache.clear()
        _SESSION_LOCKS.clear()
    models.forget()


def _session_lock(session: Any) -> threading.Lock:
    with _SESSIONS_LOCK:
        lock = _SESSION_LOCKS.get(session)
        if lock is None:
            lock = _SESSION_LOCKS[session] = threading.Lock()
        return lock


def _share_models(session: Any) -> None:
    """Give ``session`` the process's data loader (the first session's), so no JSON model is parsed twice.

    Its clients then share their service models and classes, and its cache of event names
    (airflow_cloudmarker.aws.models).
    """
    botocore_session = session._session
    with _SESSIONS_LOCK:
        if not _LOADER:
            _LOADER.append(botocore_session.get_component("data_loader"))
            models.share(_LOADER[0])
        else:
            botocore_session.register_component("data_loader", _LOADER[0])
        models.share_event_names(botocore_session.get_component("event_emitter"))


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""


class AwsAccess:
    """The connection's hook, the sessions of its accounts and their clients, for one plugin instance.

    Nothing happens at construction: the first ``own_account()`` or ``client()`` reads the
    connection (an unknown ``conn_id`` is an ``AwsConfigError`` naming it, never the ambient
    credentials the hook would otherwise fall back to).
    """

    def __init__(
        self,
        plugin: str,
        conn_id: str,
        role_name: str | None,
        retry_mode: str,
        max_attempts: int,
        max_pool_connections: int = 10,
    ):
        self.plugin = plugin
        self.conn_id = conn_id
        self.role_name = role_name
        self._retry_mode = retry_mode
        self._max_attempts = max_attempts
        self._pool = max_pool_connections
        self.counter = ApiCounter()
        self._lock = threading.RLock()  # the set-up methods call one another
        self._hook: Any = None
        self._config: Any = None
        self._own: tuple[Any, str, str] | None = None  # session, account, partition

    # -- the connection ------------------------------------------------------------------------------

    def hook(self) -> Any:
        """The ``AwsBaseHook`` of ``conn_id``; raises ``AwsConfigError`` when no such connection exists."""
        with self._lock:
            if self._hook is None:
                from botocore.config import Config

                hook, config = self._connection_hook()
                extra = {"max_pool_connections": max(self._pool, 10)}
                if getattr(config, "retries", None) is None:  # the connection's config_kwargs.retries wins
                    extra["retries"] = {"mode": self._retry_mode, "total_max_attempts": self._max_attempts}
                self._config = config.merge(Config(**extra))
                self._hook = hook
            return self._hook

    def _connection_hook(self) -> tuple[Any, Any]:
        """The connection's hook and its botocore config: one connection look-up per process (``_HOOKS``)."""
        with _account_lock(("hook", self.conn_id)):
            cached = _HOOKS.get(self.conn_id)
            if cached is None or cached[1] < time.time():
                cached = (self._make_hook(), time.time() + OWN_SESSION_SECONDS)
                _HOOKS[self.conn_id] = cached
            return cached[0]

    def _make_hook(self) -> tuple[Any, Any]:
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        except ImportError as exc:
            raise AwsConfigError(
                f"{self.plugin} needs the Airflow amazon provider and boto3 ({exc}); "
                'install them with pip install "airflow-cloudmarker[aws]"'
            ) from exc
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = AwsBaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException as exc:
            raise AwsConfigError(
                f"{self.plugin} param conn_id: no Airflow connection {self.conn_id!r}; create it "
                f"(airflow connections add {self.conn_id} --conn-type aws ..., or AIRFLOW_CONN_"
                f"{self.conn_id.upper()}) or set conn_id to an existing connection"
            ) from exc
        util.mask_secret(connection.password)
        hook = AwsBaseHook(aws_conn_id=self.conn_id, client_type="sts")
        return hook, hook.config  # hook.config reads conn_config too: both are built before threads share the hook

    def endpoint(self, service: str) -> str | None:
        """The connection's endpoint for ``service`` (``service_config``, else ``endpoint_url``), or None."""
        return self.hook().conn_config.get_service_endpoint_url(service)

    def _own_session(self) -> tuple[Any, str, str]:
        """The connection's session, account and partition: one GetCallerIdentity per connection and process."""
        hook = self.hook()
        with self._lock:
            if self._own is None:
                with _account_lock(("own", self.conn_id)):  # one GetCallerIdentity, other locks stay free
                    cached = _OWN.get(self.conn_id)
                    if cached is None or cached[1] < time.time():
                        cached = (self._identify(hook), time.time() + OWN_SESSION_SECONDS)
                        _OWN[self.conn_id] = cached
                self._own = cached[0]
            return self._own

    def _identify(self, hook: Any) -> tuple[Any, str, str]:
        region = hook.region_name or DEFAULT_REGION
        session = hook.get_session(region_name=region)
        _share_models(session)
        identity = self._make_client(session, "sts", region).get_caller_identity()
        partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
        log.info("%s: connection %s is %s", self.plugin, self.conn_id, identity.get("Arn"))
        return session, str(identity["Account"]), partition

    def own_account(self) -> str:
        """The account of the connection's own credentials (one STS GetCallerIdentity call per instance)."""
        return self._own_session()[1]

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn``, ``aws-us-gov``: from the caller's ARN."""
        return self._own_session()[2]

    # -- sessions per account --------------------------------------------------------------------------

    def session(self, account: str) -> Any:
        """The boto3 session acting in ``account``: the connection's own, or ``role_name`` assumed in it."""
        own_session, own_account, partition = self._own_session()
        if account == own_account:
            return own_session
        if not self.role_name:
            raise AwsConfigError(
                f"{self.plugin}: account {account} is not the connection's own ({own_account}) and param "
                "role_name is not set; set role_name to the role to assume in each member account"
            )
        key = (self.conn_id, account, self.role_name)
        with _account_lock(key):  # the shards of one account read at once wait for one AssumeRole
            cached = _SESSIONS.get(key)
            if cached is not None and cached[1] - RENEW_BEFORE_SECONDS > time.time():
                return cached[0]
            session, expires = self._assume(own_session, account, partition)
            _SESSIONS[key] = (session, expires)
            return session

    def _assume(self, own_session: Any, account: str, partition: str) -> tuple[Any, float]:
        import boto3
        import botocore.session

        role_arn = f"arn:{partition}:iam::{account}:role/{self.role_name}"
        sts = self._make_client(own_session, "sts", own_session.region_name or DEFAULT_REGION)
        try:
            answer = sts.assume_role(
                RoleArn=role_arn, RoleSessionName="cloudmarker", DurationSeconds=ASSUME_ROLE_SECONDS
            )
        except Exception as exc:
            if not error_code(exc):
                raise
            raise AwsAccessError(f"{self.plugin}: cannot assume {role_arn}: {exc}") from exc
        creds = answer["Credentials"]
        util.mask_secret(creds["SecretAccessKey"])  # the hook masks its own keys, not these
        util.mask_secret(creds["SessionToken"])
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=own_session.region_name,
            botocore_session=botocore.session.Session(),
        )
        # The service models (EC2's is megabytes of JSON) are parsed once per loader: the process's
        # loader, so 50 member accounts do not parse them 50 times, and their clients share models.
        _share_models(session)
        expiration = creds.get("Expiration")
        expires = expiration.timestamp() if hasattr(expiration, "timestamp") else time.time() + ASSUME_ROLE_SECONDS
        log.info("%s: assumed %s", self.plugin, role_arn)
        return session, expires

    def alias(self, account: str) -> str | None:
        """The account's IAM alias (None when it has none or the role may not list it); one call per process."""
        key = (self.conn_id, account)
        with _account_lock(key):
            if key not in _ALIASES:
                _ALIASES[key] = self._read_alias(account)
            return _ALIASES[key]

    def _read_alias(self, account: str) -> str | None:
        iam = self.client(account, "iam", DEFAULT_REGION)
        try:
            aliases = iam.list_account_aliases().get("AccountAliases") or []
        except Exception as exc:
            if not error_code(exc):
                raise
            log.warning("%s: cannot read the alias of account %s (%s)", self.plugin, account, error_code(exc))
            aliases = []
        return aliases[0] if aliases else None

    # -- clients ---------------------------------------------------------------------------------------

    def client(self, account: str, service: str, region: str) -> Any:
        """A boto3 client of ``service`` in ``region``, acting in ``account``, counted by ``counter``."""
        return self._make_client(self.session(account), service, region)

    def _make_client(self, session: Any, service: str, region: str) -> Any:
        self.hook()
        endpoint = self.endpoint(service)
        with _session_lock(session):  # a session is not thread-safe; the first client of a service loads its model
            client = session.client(
                service, region_name=region, endpoint_url=endpoint, config=self._config, verify=self._hook.verify
            )
        if service == "s3control" and endpoint:
            _keep_endpoint_host(client, endpoint)
        return self.counter.attach(client)


def _keep_endpoint_host(client: Any, endpoint: str) -> None:
    """Send s3control requests to the configured endpoint itself, not to ``<account>.<endpoint host>``.

    botocore's endpoint rules put the account id in front of the host for s3control, also for a
    custom ``endpoint_url`` (``http://111122223333.127.0.0.1:5000``): that name does not resolve (and
    resolving it sends a DNS query out). The request is rewritten before it is signed.
    """
    host = urlsplit(endpoint).netloc

    def rewrite(request: Any, **kwargs: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != host and parts.netloc.endswith("." + host):
            request.url = urlunsplit(parts._replace(netloc=host))

    client.meta.events.register("before-sign.s3-control.*", rewrite)

"""EsStore: index records into Elasticsearch with bulk requests, idempotently.

Records are buffered as NDJSON lines up to ``buffer_size`` bytes and sent with the official
client's ``helpers.streaming_bulk`` (items rejected with 429, or the whole request answered
429/502/503/504, are retried with backoff). Every document carries a deterministic ``_id``
(see ``_documents``), so a retried task or a cleared run overwrites instead of duplicating.

The installed 9.x client asks for ``compatible-with=9`` on every request, which an Elasticsearch
8.x server refuses; so each store asks the server its version once (``GET /``) and speaks its
major (see ``_CompatibleWith``), unless the user pinned one with ``[elasticsearch] es_compat_with``.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson

from airflow_cloudmarker import util
from airflow_cloudmarker.stores import _documents as docs

log = logging.getLogger(__name__)

#: Bulk items or requests answered with these statuses are retried (then the task fails).
RETRY_ON_STATUS = (429, 502, 503, 504)
MAX_RETRIES = 3
INITIAL_BACKOFF = 0.5
#: Elasticsearch majors EsStore writes to: the installed client's (9) and the one before, which
#: accepts the same bulk API under ``compatible-with=8``.
SUPPORTED_MAJORS = (8, 9)

#: The JSON media types the client negotiates, plain or already in the vendor form it writes.
_MEDIA_TYPE = re.compile(
    r"application/(?:vnd\.elasticsearch\+)?(json|x-ndjson|vnd\.mapbox-vector-tile)(?:\s*;\s*compatible-with=\d+)?"
)


def _cause(failure: Exception, exc: Exception) -> Exception | None:
    """The client error to chain to ``failure``; none for refused credentials (the answer may echo them)."""
    return None if isinstance(failure, docs.StoreAuthError) else exc


class _NoTraceback(logging.Filter):
    """elastic_transport logs a full traceback on every retry; keep its one-line warning only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _quiet_transport_logs() -> None:
    """One line per retry instead of a traceback, and no INFO line per bulk request."""
    transport_log = logging.getLogger("elastic_transport.transport")
    if not any(isinstance(f, _NoTraceback) for f in transport_log.filters):
        transport_log.addFilter(_NoTraceback())
        if transport_log.level < logging.WARNING:
            transport_log.setLevel(logging.WARNING)


def _as_is(action: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """Our actions are already serialized: the helper passes bytes through its serializer unchanged."""
    return action


def _pinned_compat_with() -> str | None:
    """The user's ``[elasticsearch] es_compat_with``, if set.

    The provider's hooks then rewrite every request to it, and EsStore honours that choice instead
    of asking the server.
    """
    from airflow.providers.common.compat.sdk import conf

    return (conf.get("elasticsearch", "es_compat_with", fallback=None) or "").strip() or None


class _CompatibleWith:
    """Make one client speak the server's major: ``compatible-with=<major>`` on Accept and Content-Type.

    Why here: elasticsearch-py 9 rewrites ``application/json`` to ``application/vnd.elasticsearch+json;
    compatible-with=9`` on every request, from a module constant, after the endpoint's own headers
    have replaced the client's (``options(headers=...)`` cannot change it; the client has no setting
    for it). An 8.x server refuses that with HTTP 400 ``media_type_header_exception``. The place left
    is the transport under the client, which is where the provider's ``es_compat_with`` rewrites it
    too, for the whole process; this does it for one client, with the major the server reported.
    (A ``transport_class`` subclass would need passing to the client's constructor, which with
    ``conn_id`` runs inside the provider's ``ESConnection``: wrapping the instance serves both paths.)

    ``major`` None sends plain ``application/json``, which every major takes as its current API: for
    ``GET /`` before the version is known, and when the credentials may not read it.
    """

    def __init__(self, transport: Any) -> None:
        self.major: int | None = None
        self._perform_request = transport.perform_request
        transport.perform_request = self.perform_request

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        headers = kwargs.get("headers")
        if headers:
            kwargs["headers"] = {
                name: self._media_type(value) if value and name.lower() in ("accept", "content-type") else value
                for name, value in headers.items()
            }
        return self._perform_request(*args, **kwargs)

    def _media_type(self, value: str) -> str:
        if self.major is None:
            return _MEDIA_TYPE.sub(r"application/\g<1>", value)
        return _MEDIA_TYPE.sub(rf"application/vnd.elasticsearch+\g<1>; compatible-with={self.major}", value)


class EsStore:
    """Send records (or events, as an alert plugin) to an Elasticsearch index.

    Params:
        host, port: the Elasticsearch server (``http://host:port/``; ``host`` may be a full URL).
        index: the index to write to.
        buffer_size: bytes of NDJSON per bulk request (default 5,000,000).
        conn_id: an Airflow ``elasticsearch`` connection id instead of host/port (auth and TLS:
            login/password, the ``schema`` field as URL scheme, extras such as ``api_key``,
            ``ca_certs``, ``verify_certs`` go to the client).

    Elasticsearch 8.x and 9.x work as they are: the store asks the server its version once (``GET /``,
    one request per store instance) and sends that major's ``compatible-with``; another major fails
    the task with one line naming the version found. ``[elasticsearch] es_compat_with``, when set,
    is honoured instead (no ``GET /``; the provider hooks rewrite every request to it).
    """

    #: As an alert under ``alert_on: changes`` it still gets every event: it is the record (contract.ABILITIES).
    keeps_every_event = True

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9200,
        index: str = "cloudmarker",
        buffer_size: int = 5_000_000,
        conn_id: str | None = None,
    ):
        self._buffer_size = docs.positive_int("EsStore", "buffer_size", buffer_size)
        if not isinstance(index, str) or not index:
            raise ValueError(f"EsStore param index must be a non-empty string, not {index!r}; fix the index param")
        self._host = str(host)
        self._port = port
        self._index = index
        self._conn_id = conn_id
        self._action_prefix = b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":"'
        self._client: Any = None
        self._server = self._describe()
        self._buffer: list[tuple[bytes, bytes]] = []
        self._buffer_bytes = 0
        self._sender: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._received = 0
        self._written = 0
        self.requests = 0

    def _describe(self) -> str:
        if self._conn_id:
            return f"Elasticsearch connection {self._conn_id!r} index {self._index!r}"
        return f"Elasticsearch {self._url()} index {self._index!r}"

    def _url(self) -> str:
        if "://" in self._host:
            return self._host
        return f"http://{self._host}:{self._port}/"

    def _connect(self, count: int) -> Any:
        """The client, built once per store: through the provider's hooks, speaking the server's major.

        ``count`` (the records of the batch about to be sent) is what an error here reports as not written.
        """
        if self._client is not None:
            return self._client
        _quiet_transport_logs()
        client = self._hook_client()
        if _pinned_compat_with() is None:
            negotiation = _CompatibleWith(client.transport)
            try:
                negotiation.major = self._server_major(client, count)
            except BaseException:
                client.close()
                raise
        self._client = client
        return client

    def _hook_client(self) -> Any:
        """An Elasticsearch client from the provider's hooks (they apply auth, TLS and ``es_compat_with``)."""
        if self._conn_id:
            from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

            hook = ElasticsearchSQLHook(elasticsearch_conn_id=self._conn_id)
            util.mask_secret(hook.connection.password)
            connection = hook.get_conn()
            self._server = f"Elasticsearch {connection.url} (connection {self._conn_id!r}) index {self._index!r}"
            return connection.es.options(max_retries=MAX_RETRIES, retry_on_timeout=True)
        from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchPythonHook

        hook = ElasticsearchPythonHook(
            hosts=[self._url()], es_conn_args={"max_retries": MAX_RETRIES, "retry_on_timeout": True}
        )
        return hook.get_conn

    def _server_major(self, client: Any, count: int) -> int | None:
        """Ask the server its version (``GET /`` in plain JSON, which every major answers); None: unknown.

        Writer-only credentials (no ``monitor`` cluster privilege) get 403 here; they may still index,
        so the store goes on in plain JSON rather than fail.
        """
        from elastic_transport import TransportError
        from elasticsearch import ApiError, AuthorizationException, UnsupportedProductError

        try:
            info = client.info().body
        except AuthorizationException:
            log.warning(
                "EsStore: %s: the credentials may not read the server version (HTTP 403 on GET /: no 'monitor' "
                "cluster privilege); sending plain application/json, which every Elasticsearch major accepts",
                self._server,
            )
            return None
        except UnsupportedProductError as exc:
            raise self._unsupported(exc.body, count, "not Elasticsearch (no X-Elastic-Product header)") from exc
        except (ApiError, TransportError) as exc:
            failure = self._failure(exc, "GET / (the server version)", count)
            raise failure from _cause(failure, exc)
        version = info.get("version") if isinstance(info, dict) else None
        number = str(version.get("number", "")) if isinstance(version, dict) else ""
        major = number.partition(".")[0]
        if not major.isdigit() or int(major) not in SUPPORTED_MAJORS:
            raise self._unsupported(info, count)
        log.info("EsStore: %s runs Elasticsearch %s: sending compatible-with=%s", self._server, number, major)
        return int(major)

    def _unsupported(self, info: Any, count: int, what: str = "") -> docs.StoreError:
        """The one line for a server EsStore does not write to: what it found, what is supported, the fix."""
        version = info.get("version") if isinstance(info, dict) else None
        version = version if isinstance(version, dict) else {}
        product = "OpenSearch" if version.get("distribution") == "opensearch" else "Elasticsearch"
        found = f"{product} {version.get('number')}" if version.get("number") else "no version in its GET / answer"
        supported = " and ".join(f"{major}.x" for major in SUPPORTED_MAJORS)
        return docs.StoreError(
            "EsStore",
            self._server,
            f"the server runs {found}{', ' + what if what else ''}, EsStore supports Elasticsearch {supported}: "
            "upgrade the server",
            count,
            self._received,
        )

    def _failure(self, exc: Exception, what: str, count: int) -> docs.StoreError:
        """One error for a request the client gave up on: credentials, an HTTP error, or the network."""
        from elasticsearch import ApiError, AuthenticationException, AuthorizationException

        if isinstance(exc, AuthenticationException | AuthorizationException):
            return docs.StoreAuthError(
                "EsStore",
                self._server,
                f"the server refused the credentials (HTTP {exc.status_code}); fix the login/password or "
                "api_key of the Elasticsearch connection",
                count,
                self._received,
            )
        if isinstance(exc, ApiError):
            pinned = _pinned_compat_with()
            hint = ""
            if "media_type_header_exception" in str(exc) and pinned:
                hint = (
                    f"; the server refused compatible-with={pinned} from [elasticsearch] es_compat_with = {pinned}: "
                    "fix it, or unset it to let EsStore ask the server its version"
                )
            reason = f"{what} failed: HTTP {exc.status_code} {exc.message}{hint}"
        else:
            reason = f"{what} failed after {MAX_RETRIES} retries: {getattr(exc, 'message', exc)}"
        return docs.StoreError("EsStore", self._server, reason, count, self._received)

    def write(self, record: dict) -> None:
        """Buffer one record as an index action with its deterministic ``_id``; send when the buffer is full."""
        doc_id, source = docs.encode_with_id(record)
        action = self._action_prefix + doc_id.encode() + b'"}}'
        size = len(action) + len(source) + 2
        if self._buffer and self._buffer_bytes + size > self._buffer_size:
            self._flush()
        self._buffer.append((action, source))
        self._buffer_bytes += size
        self._received += 1

    def done(self) -> None:
        """Send what is left in the buffer, wait for the last request, and close the client."""
        self._flush()
        self._wait_for_pending()
        if self._sender is not None:
            self._sender.shutdown()
            self._sender = None
        if self._client is not None:
            self._client.close()
            self._client = None
        log.info("EsStore: %d records indexed into %s in %d bulk requests", self._written, self._server, self.requests)

    def _flush(self) -> None:
        """Hand the buffer to the sender thread: one bulk request in flight while the next batch is encoded.

        At most two batches exist at once (the one in flight, the one filling), so memory stays bounded;
        an error of the request in flight is raised here, at the next flush, or in ``done()``.
        """
        if not self._buffer:
            return
        actions, size = self._buffer, self._buffer_bytes
        self._buffer, self._buffer_bytes = [], 0
        client = self._connect(len(actions))
        self._wait_for_pending()
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esstore-bulk")
        self._pending = self._sender.submit(self._send, client, actions, size)

    def _wait_for_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _send(self, client: Any, actions: list[tuple[bytes, bytes]], size: int) -> None:
        from elastic_transport import TransportError
        from elasticsearch import ApiError
        from elasticsearch.helpers import streaming_bulk

        failures: list[dict] = []
        self.requests += 1
        try:
            for _ok, item in streaming_bulk(
                client,
                actions,
                chunk_size=len(actions),
                max_chunk_bytes=max(self._buffer_size, size),
                expand_action_callback=_as_is,
                raise_on_error=False,
                max_retries=MAX_RETRIES,
                initial_backoff=INITIAL_BACKOFF,
                retry_on_status=RETRY_ON_STATUS,
                yield_ok=False,
            ):
                failures.append(next(iter(item.values())))
        except (ApiError, TransportError) as exc:
            failure = self._failure(exc, "bulk request", len(actions))
            raise failure from _cause(failure, exc)
        self._written += len(actions) - len(failures)
        if failures:
            first = failures[0]
            error = first.get("error") or {}
            reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else str(error)
            raise docs.StoreError(
                "EsStore",
                self._server,
                f"{len(failures)} bulk items were rejected after {MAX_RETRIES} retries; "
                f"first: HTTP {first.get('status')} {reason}",
                len(failures),
                self._received,
            )

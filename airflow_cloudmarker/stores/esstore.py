"""EsStore: index records into Elasticsearch with bulk requests, idempotently.

Records are buffered as NDJSON lines up to ``buffer_size`` bytes and sent with the official
client's ``helpers.streaming_bulk`` (items rejected with 429, or the whole request answered
429/502/503/504, are retried with backoff). Every document carries a deterministic ``_id``
(see ``_documents``), so a retried task or a cleared run overwrites instead of duplicating.
"""

from __future__ import annotations

import logging
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


class EsStore:
    """Send records (or events, as an alert plugin) to an Elasticsearch index.

    Params:
        host, port: the Elasticsearch server (``http://host:port/``; ``host`` may be a full URL).
        index: the index to write to.
        buffer_size: bytes of NDJSON per bulk request (default 5,000,000).
        conn_id: an Airflow ``elasticsearch`` connection id instead of host/port (auth and TLS:
            login/password, the ``schema`` field as URL scheme, extras such as ``api_key``,
            ``ca_certs``, ``verify_certs`` go to the client).

    An Elasticsearch 8 server with the (default) 9.x client needs ``[elasticsearch]
    es_compat_with = 8`` (``AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH=8``), honoured by the provider hooks used here.
    """

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

    def _connect(self) -> Any:
        """Build the client through the provider's hooks (they apply ``es_compat_with``)."""
        if self._client is not None:
            return self._client
        _quiet_transport_logs()
        if self._conn_id:
            from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

            hook = ElasticsearchSQLHook(elasticsearch_conn_id=self._conn_id)
            util.mask_secret(hook.connection.password)
            connection = hook.get_conn()
            self._server = f"Elasticsearch {connection.url} (connection {self._conn_id!r}) index {self._index!r}"
            client = connection.es.options(max_retries=MAX_RETRIES, retry_on_timeout=True)
        else:
            from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchPythonHook

            hook = ElasticsearchPythonHook(
                hosts=[self._url()], es_conn_args={"max_retries": MAX_RETRIES, "retry_on_timeout": True}
            )
            client = hook.get_conn
        self._client = client
        return client

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
        client = self._connect()
        self._wait_for_pending()
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esstore-bulk")
        self._pending = self._sender.submit(self._send, client, actions, size)

    def _wait_for_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _send(self, client: Any, actions: list[tuple[bytes, bytes]], size: int) -> None:
        from elasticsearch import ApiError, AuthenticationException, AuthorizationException, TransportError
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
        except (AuthenticationException, AuthorizationException) as exc:
            raise docs.StoreAuthError(
                "EsStore",
                self._server,
                f"the server refused the credentials (HTTP {exc.status_code}); fix the login/password or "
                "api_key of the Elasticsearch connection",
                len(actions),
                self._received,
            ) from None
        except ApiError as exc:
            hint = ""
            if "media_type_header_exception" in str(exc):
                hint = (
                    "; an older Elasticsearch server: set [elasticsearch] es_compat_with = 8 "
                    "(AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH=8)"
                )
            raise docs.StoreError(
                "EsStore",
                self._server,
                f"bulk request failed: HTTP {exc.status_code} {exc.message}{hint}",
                len(actions),
                self._received,
            ) from None
        except TransportError as exc:
            raise docs.StoreError(
                "EsStore",
                self._server,
                f"bulk request failed after {MAX_RETRIES} retries: {exc.message}",
                len(actions),
                self._received,
            ) from None
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

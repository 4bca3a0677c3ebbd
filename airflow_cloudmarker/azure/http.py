"""The HTTP transport of ``rest.ArmReader``: azure-core's transport interface on urllib3's pools directly.

Why not azure-core's ``RequestsTransport``: for every call requests scans the environment for
proxies, builds and merges cookie jars, runs hooks and wraps the answer in a ``Response`` of its
own, about as much CPU as the HTTP exchange itself (issue 17: a large tenant's fetch is CPU-bound).
What requests decides from the environment does not change between calls, so it is decided once
per host here, by requests itself (``ArmConnections``): the proxy (``HTTPS_PROXY``, ``NO_PROXY``...),
the CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, else certifi's) and the urllib3 pool,
taken from a requests ``HTTPAdapter`` of our own; each call is then one ``urlopen``.

Imported only when a plugin first reads (``arm`` imports it then): azure-core is not loaded at DAG parse time.

The transport counts calls and throttled calls and keeps the per-subscription ``ThrottleGate``
(``arm.CallCounter``), as the SDK clients' transport does. Connection and read failures become
azure-core's ``ServiceRequestError`` and ``ServiceResponseError``, which its retry policy retries.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpResponse
from urllib3 import Timeout
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: azure-core's defaults (seconds): the connection timeout and the read timeout of a call
CONNECTION_TIMEOUT = 300.0
READ_TIMEOUT = 300.0


class CallCounter(Protocol):
    """What the transport reports each call to (``arm.CallCounter``: counts, and the ThrottleGate)."""

    def call(self, request: Any, send: Callable[[], Any]) -> Any:
        """Send (``send()``) and count ``request``; return its response."""


class ArmConnections:
    """urllib3 connection pools for ARM hosts, each set up once as a requests session would set it up.

    One per process and set of params (``arm.SharedConnections``): every shard instance's calls use
    the same kept-alive connections. Its own ``HTTPAdapter``, so no other host's pool can push an ARM
    pool out of the adapter's few pools (``pool_connections``).
    """

    def __init__(self, pool_size: int):
        self._environment = requests.Session()  # trust_env: it reads proxies and the CA bundle as requests does
        self._adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()

    def pool(self, scheme: str, netloc: str) -> Any:
        """The urllib3 connection pool for ``scheme://netloc`` (through its proxy, with its CA bundle)."""
        key = f"{scheme}://{netloc}"
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    settings = self._environment.merge_environment_settings(key, {}, None, None, None)
                    prepared = requests.Request("GET", key + "/").prepare()
                    pool = self._adapter.get_connection_with_tls_context(
                        prepared, settings["verify"], settings["proxies"], settings["cert"]
                    )
                    self._pools[key] = pool
        return pool

    def close(self) -> None:
        """Close every connection (a later call opens new ones)."""
        with self._lock:
            self._pools.clear()
            self._adapter.close()
        self._environment.close()


def charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header (``application/json; charset=utf-8``), or None."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def arm_transport(connections: ArmConnections, counter: CallCounter) -> ArmTransport:
    """An azure-core ``HttpTransport`` sending on ``connections``, counting into ``counter``."""
    return ArmTransport(connections, counter)


class ArmResponse(HttpResponse):
    """A response read whole (ARM GETs answer JSON documents, never streams)."""

    def __init__(self, request: Any, status: int, reason: str, headers: Any, content: bytes):
        self._request, self._status, self._reason = request, status, reason
        self._headers, self._content = headers, content
        self._encoding: str | None = None
        self._text: str | None = None

    @property
    def request(self) -> Any:
        """The request this answers."""
        return self._request

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self._status

    @property
    def headers(self) -> Any:
        """The response headers (case-insensitive)."""
        return self._headers

    @property
    def reason(self) -> str:
        """The status's reason phrase."""
        return self._reason

    @property
    def content_type(self) -> str | None:
        """The Content-Type header."""
        return self._headers.get("Content-Type")

    @property
    def is_closed(self) -> bool:
        """Always: the body was read whole."""
        return True

    @property
    def is_stream_consumed(self) -> bool:
        """Always: the body was read whole."""
        return True

    @property
    def encoding(self) -> str | None:
        """The charset of the Content-Type (None: UTF-8 is assumed)."""
        if self._encoding is None:
            self._encoding = charset(self._headers.get("Content-Type")) or ""
        return self._encoding or None

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding, self._text = value, None

    @property
    def url(self) -> str:
        """The request's URL."""
        return self._request.url

    @property
    def content(self) -> bytes:
        """The body."""
        return self._content

    def text(self, encoding: str | None = None) -> str:
        """The body decoded (UTF-8, a BOM dropped, unless a charset says otherwise)."""
        if encoding is None and self._text is not None:
            return self._text
        chosen = encoding or self.encoding
        text = self._content.decode("utf-8-sig" if chosen in (None, "utf-8") else chosen, errors="replace")
        if encoding is None:
            self._text = text
        return text

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.text()) if self._content else None

    def raise_for_status(self) -> None:
        """Raise ``HttpResponseError`` for a 4xx or 5xx status."""
        if self._status >= 400:
            raise HttpResponseError(response=self)

    def __enter__(self) -> ArmResponse:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        """Nothing to close: the connection went back to its pool with the body read."""

    def read(self) -> bytes:
        """The body."""
        return self._content

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        """The body, in one piece."""
        yield self._content

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        """The body, in one piece."""
        yield self._content


class ArmTransport(HttpTransport):
    """Each call one ``urlopen`` on its host's pool; the pools belong to ``ArmConnections`` (closed there)."""

    def __init__(self, connections: ArmConnections, counter: CallCounter):
        self._connections = connections
        self.counter = counter

    def __enter__(self) -> ArmTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        """Nothing to open: the pools open connections as calls need them."""

    def close(self) -> None:
        """Nothing to close here: ``ArmConnections`` owns the pools."""

    def send(self, request: Any, **kwargs: Any) -> ArmResponse:
        """Send ``request`` (the pipeline's options ``connection_timeout`` and ``read_timeout`` apply)."""
        return self.counter.call(request, lambda: self._send(request, kwargs))

    def _send(self, request: Any, options: dict) -> ArmResponse:
        split = urlsplit(request.url)
        target = split.path + ("?" + split.query if split.query else "")
        timeout = Timeout(
            connect=options.get("connection_timeout", CONNECTION_TIMEOUT),
            read=options.get("read_timeout", READ_TIMEOUT),
        )
        headers = dict(request.headers)
        if "Accept-Encoding" not in request.headers:  # case-insensitive: azure-core's header dict
            headers["Accept-Encoding"] = "gzip, deflate"  # as requests asks
        try:
            raw = self._connections.pool(split.scheme, split.netloc).urlopen(
                request.method,
                target,
                body=request.content,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
                decode_content=True,
                timeout=timeout,
            )
        except NewConnectionError as err:  # before ConnectTimeoutError, which it subclasses
            raise ServiceRequestError(err, error=err) from err
        except ConnectTimeoutError as err:
            raise ServiceRequestTimeoutError(err, error=err) from err
        except ReadTimeoutError as err:
            raise ServiceResponseTimeoutError(err, error=err) from err
        except ProtocolError as err:  # the connection dropped during the exchange
            raise ServiceResponseError(err, error=err) from err
        except HTTPError as err:  # TLS, proxy, pool: the request did not get through
            raise ServiceRequestError(err, error=err) from err
        return ArmResponse(request, raw.status, raw.reason or "", raw.headers, raw.data)

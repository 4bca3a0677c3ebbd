"""The threaded local HTTP server, request handler and fault injection the Elasticsearch and HEC stand-ins share."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from servers.net import free_port


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # dropped connections are part of the tests
        pass


class LocalServer:
    """Run a ``QuietServer`` with ``handler`` in a thread on a fixed port; stop and start it again."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int | None = None, ssl_context=None):
        self.handler = handler
        self.port = port or free_port()
        self.ssl_context: ssl.SSLContext | None = ssl_context
        self._httpd: QuietServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalServer:
        httpd = QuietServer(("127.0.0.1", self.port), self.handler)
        if self.ssl_context is not None:
            httpd.socket = self.ssl_context.wrap_socket(httpd.socket, server_side=True)
        httpd.app = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Failure:
    """Fail bulk requests after ``after`` good ones, ``times`` times (None: until cleared).

    mode: ``drop`` (close the connection, no answer), ``503``/``429``/``500`` (that status for the
    whole request), ``items`` (answer 200 but reject every item from then on with ``item_status``).
    """

    mode: str
    after: int = 0
    times: int | None = None
    item_status: int = 429


class FaultInjection:
    """Counts requests and fails them on demand; shared by the Elasticsearch and HEC stand-ins."""

    def _init_faults(self) -> None:
        self.requests = 0
        self.failure: Failure | None = None
        self._fault_lock = threading.Lock()

    def fail(self, mode: str, after: int = 0, times: int | None = None, item_status: int = 429) -> None:
        """Fail requests from the ``after``-th one on (counted from now)."""
        with self._fault_lock:
            self.failure = Failure(mode, self.requests + after, times, item_status)

    def heal(self) -> None:
        with self._fault_lock:
            self.failure = None

    def take_failure(self) -> Failure | None:
        """Count this request; return the failure to apply to it, if any."""
        with self._fault_lock:
            self.requests += 1
            failure = self.failure
            if failure is None or self.requests <= failure.after:
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self.failure = None
            return failure


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, no Nagle: otherwise delayed ACKs add 40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    @property
    def app(self) -> Any:
        return self.server.app  # type: ignore[attr-defined]

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload: Any, headers: dict | None = None) -> None:
        body = orjson.dumps(payload)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop(self) -> None:
        """Close the connection without an answer (a dropped connection, as the client sees it)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

"""A local AWS for the AWS tests: moto's server on loopback, behind a small proxy that adds latency and throttles.

``MotoServer`` runs ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (a free port) and a proxy in
front of it (``endpoint``): the proxy forwards every request unchanged, after ``latency`` seconds,
and answers the next ``throttle(action, times)`` requests of an action with AWS's throttling error
instead (HTTP 503 ``RequestLimitExceeded`` for EC2, 400 ``Throttling`` for the JSON/query APIs),
the way real AWS does, so the client's retries are exercised. It counts the requests per
``(service, action)``, the API calls a plugin makes, as AWS would bill them.

``connection_json`` gives the Airflow connection (env-var JSON form) that points every service, STS
included, at the proxy; ``estate`` builds an organization with member accounts and their resources.

``MotoProcess`` runs the same pair in child processes (``python -m servers.aws PORT``, which starts
``python -m moto.server``), for the benchmark: moto's and the proxy's CPU and GIL are then not the
measured process's, as with a real AWS. Its latency is set, and its counts read, over HTTP
(``/_proxy/...``, answered by the proxy).
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers.base import LocalServer, RequestHandler
from servers.net import free_port, port_open

KEY_ID = "AKIAMOTOTESTKEY00001"
SECRET = "moto-secret-Zq9x7w-not-a-real-key"
MANAGEMENT_ACCOUNT = "123456789012"  # moto's account for any key it was not given a role for
EC2_THROTTLE = (503, "RequestLimitExceeded", "Request limit exceeded.")
QUERY_THROTTLE = (400, "Throttling", "Rate exceeded")


def _service_of(headers: Any) -> str:
    """The service a SigV4-signed request is for (``Credential=KEY/date/region/SERVICE/aws4_request``)."""
    auth = headers.get("Authorization") or ""
    try:
        return auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return "unsigned"


def _key_of(headers: Any) -> str:
    auth = headers.get("Authorization") or ""
    return auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""


def _action_of(method: str, path: str, headers: Any, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    form = parse_qs(body.decode("utf-8", "replace")) if body and b"=" in body[:200] else {}
    for source in (form, query):
        if "Action" in source:
            return source["Action"][0]
    # S3 (REST): the method and the sub-resource of the query string name the operation.
    sub = sorted(k for k in query if k not in ("prefix", "max-keys", "continuation-token", "list-type"))
    return f"{method} {urlsplit(path).path.count('/') > 1 and 'object' or 'bucket'}{'?' + ','.join(sub) if sub else ''}"


class _ProxyHandler(RequestHandler):
    def _forward(self) -> None:
        app: MotoServer = self.app
        body = self._body()
        if self.path.startswith("/_proxy/"):
            self._control(app, body)
            return
        with app.in_flight():
            self._relay(app, body)

    def _control(self, app: MotoServer, body: bytes) -> None:
        """``POST /_proxy/settings`` ``{"latency": s}``, ``POST /_proxy/reset-counts``; each answers the stats."""
        if self.command == "POST" and self.path == "/_proxy/settings":
            app.latency = float(json.loads(body or b"{}").get("latency", app.latency))
        elif self.command == "POST" and self.path == "/_proxy/reset-counts":
            app.reset_counts()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = {
            "calls": sum(app.calls.values()),
            "peak_in_flight": app.peak,
            "cpu": usage.ru_utime + usage.ru_stime,
            "moto_cpu": app.moto_cpu(),
        }
        answer = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _relay(self, app: MotoServer, body: bytes) -> None:
        service = _service_of(self.headers)
        action = _action_of(self.command, self.path, self.headers, body)
        throttled = app.take_throttle(service, action)
        if app.latency:
            time.sleep(app.latency)
        if _key_of(self.headers) in app.rejected_keys:
            self._reject(service)
            return
        if throttled is not None:
            self._throttle(service, throttled)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn = app.moto_connection()
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            conn.close()
            app.drop_connection()
            raise
        app.release_connection(conn)
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reject(self, service: str) -> None:
        """What AWS answers a request signed with an unknown key (STS: InvalidClientTokenId, EC2: AuthFailure)."""
        if service == "ec2":
            self._throttle(
                service, (401, "AuthFailure", "AWS was not able to validate the provided access credentials")
            )
        else:
            self._throttle(
                service, (403, "InvalidClientTokenId", "The security token included in the request is invalid.")
            )

    def _throttle(self, service: str, error: tuple[int, str, str]) -> None:
        status, code, message = error
        if service == "ec2":
            body = (
                f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>throttled</RequestID></Response>"
            ).encode()
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>throttled</RequestId></ErrorResponse>"
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class _MotoProcess:
    """``python -m moto.server`` on 127.0.0.1 in a child process, with ThreadedMotoServer's interface."""

    def __init__(self) -> None:
        self._port = free_port()
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self._port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not port_open(self._port):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("moto.server did not start")
            time.sleep(0.1)

    def get_host_and_port(self) -> tuple[str, int]:
        return "127.0.0.1", self._port

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)


class _Clients:
    """The connection and plain clients of a local AWS at ``endpoint`` (MotoServer, MotoProcess)."""

    endpoint: str

    def connection_json(self, key_id: str = KEY_ID, secret: str = SECRET, **extra: Any) -> str:
        """The Airflow connection (``AIRFLOW_CONN_<ID>`` JSON) whose every service, STS included, is this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": key_id,
                "password": secret,
                "extra": {
                    "region_name": "us-east-1",
                    "endpoint_url": self.endpoint,
                    "service_config": {"sts": {"endpoint_url": self.endpoint}},
                    **extra,
                },
            }
        )

    def client(self, service: str, region: str = "us-east-1", **credentials: Any) -> Any:
        """A plain boto3 client of this server (for building the estate; the plugin uses its hook)."""
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=credentials.get("aws_access_key_id", KEY_ID),
            aws_secret_access_key=credentials.get("aws_secret_access_key", SECRET),
            aws_session_token=credentials.get("aws_session_token"),
        )

    def account_client(self, account: str, service: str, region: str = "us-east-1", role: str = "CloudmarkerAudit"):
        """A client acting in member ``account`` (moto keeps each account's state apart by its credentials)."""
        if account == MANAGEMENT_ACCOUNT:
            return self.client(service, region)
        creds = self.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="estate")[
            "Credentials"
        ]
        return self.client(
            service,
            region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )


class MotoServer(_Clients):
    """moto's server and the proxy in front of it, both on 127.0.0.1; ``endpoint`` is the proxy's URL."""

    def __init__(self, latency: float = 0.0, own_process: bool = False, proxy_port: int | None = None):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self.latency = latency
        # own_process: moto in a child process (python -m moto.server), so its work does not share
        # the GIL of the proxy's threads (MotoProcess) or of the client under measurement.
        self._moto = _MotoProcess() if own_process else ThreadedMotoServer("127.0.0.1", free_port(), verbose=False)
        self._proxy = LocalServer(_ProxyHandler, port=proxy_port)
        self._lock = threading.Lock()
        self._in_flight = 0
        #: The most requests the proxy had in hand at once since the last ``reset_counts``.
        self.peak = 0
        self._throttles: dict[str, int] = {}
        self._pool: list[http.client.HTTPConnection] = []
        self.calls: collections.Counter = collections.Counter()
        self.throttled: collections.Counter = collections.Counter()
        #: Access key ids whose requests are refused as AWS refuses an unknown key.
        self.rejected_keys: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> MotoServer:
        self._moto.start()
        self._proxy.start()
        self._proxy._httpd.app = self  # the handler asks its server's app for the state kept here
        self.reset()  # moto keeps its state per process: a second server in a process would see the first's
        return self

    def stop(self) -> None:
        self._proxy.stop()
        self._moto.stop()
        for conn in self._pool:
            conn.close()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def moto_cpu(self) -> float:
        """moto's CPU seconds so far when it runs in a child process (Linux: /proc), else 0."""
        process = getattr(self._moto, "_process", None)
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (AttributeError, OSError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def moto_port(self) -> int:
        return self._moto.get_host_and_port()[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._proxy.port}"

    def reset(self) -> None:
        """Wipe moto's state (every account and region) and the counters."""
        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=30)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()
        self.reset_counts()

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
            self.peak = self._in_flight

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request in hand for ``peak`` (the concurrency a client reached)."""
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    # -- the proxy's state -------------------------------------------------------------------------

    def throttle(self, action: str, times: int) -> None:
        """Answer the next ``times`` requests of ``action`` (``DescribeVolumes``) with a throttling error."""
        with self._lock:
            self._throttles[action] = times

    def take_throttle(self, service: str, action: str) -> tuple[int, str, str] | None:
        with self._lock:
            self.calls[(service, action)] += 1
            left = self._throttles.get(action, 0)
            if left <= 0:
                return None
            self._throttles[action] = left - 1
            self.throttled[(service, action)] += 1
            return EC2_THROTTLE if service == "ec2" else QUERY_THROTTLE

    def moto_connection(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=60)

    def release_connection(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._pool.append(conn)

    def drop_connection(self) -> None:
        pass


class MotoProcess(_Clients):
    """A ``MotoServer`` in child processes (``python -m servers.aws PORT``): the proxy in one, moto in its own.

    Neither shares a GIL with the process under measurement, nor with the other: with moto's
    request handling and the proxy's in one process, each wakened proxy thread waited for moto's
    CPU-bound thread to hand over the GIL, which stretched the 50 ms waits.
    """

    def __init__(self, latency: float = 0.0):
        self.port = free_port()
        self._latency = latency
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoProcess:
        tests = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "servers.aws", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise RuntimeError("the moto child process did not start")
            time.sleep(0.1)
        self.latency = self._latency
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def __enter__(self) -> MotoProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _control(self, method: str, path: str, settings: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, f"/_proxy/{path}", body=json.dumps(settings or {}))
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._latency = value
        if self._process is not None:
            self._control("POST", "settings", {"latency": value})

    def stats(self) -> dict:
        """``calls``, ``peak_in_flight`` (since ``reset_counts``); ``cpu``, ``moto_cpu``: the proxy and moto CPU."""
        return self._control("GET", "stats")

    def reset_counts(self) -> None:
        self._control("POST", "reset-counts")


def _serve(port: int) -> None:
    """The child of ``MotoProcess``: a MotoServer (moto in a child of its own) whose proxy listens on ``port``."""
    import signal

    server = MotoServer(own_process=True, proxy_port=port).start()
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))


__all__ = ["KEY_ID", "MANAGEMENT_ACCOUNT", "SECRET", "MotoProcess", "MotoServer"]

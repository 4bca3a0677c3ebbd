"""MongoDB for tests: the real ``nx-27017`` wire-protocol server, and a wire-level proxy that fails on demand.

nx-27017 (PyPI) speaks the MongoDB wire protocol over SQLite. It has no authentication, so the
proxy in front of it answers SCRAM ``saslStart`` the way MongoDB answers wrong credentials
(code 18 AuthenticationFailed) when told to, and drops connections on write commands
(``update``/``insert``) after N of them, as a dying server or a cut network would.
Everything else is forwarded byte for byte.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import bson

from servers.net import free_port

OP_MSG = 2013


def start_nx(tmp_dir: Path) -> tuple[subprocess.Popen, int]:
    """Start nx-27017 (in-memory) on a free port; return the process and the port once it listens."""
    port = free_port()
    exe = Path(sys.executable).with_name("nx-27017")
    proc = subprocess.Popen(
        [
            str(exe),
            "--db",
            "memory",
            "-p",
            str(port),
            "--log-file",
            str(tmp_dir / "nx.log"),
            "--pid-file",
            str(tmp_dir / "nx.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nx-27017 did not start listening within 20 s")


def stop_nx(proc: subprocess.Popen) -> None:
    """Stop nx-27017: SIGTERM, then SIGKILL when it takes longer than 5 s (it may, after a big load)."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _read_message(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 16)
    if header is None:
        return None
    (length,) = struct.unpack("<i", header[:4])
    body = _read_exact(sock, length - 16)
    return None if body is None else header + body


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _command(message: bytes) -> tuple[int, dict | None]:
    """The request id and, for an OP_MSG, its command document (section kind 0)."""
    request_id, _, opcode = struct.unpack("<iii", message[4:16])
    if opcode != OP_MSG or message[20] != 0:
        return request_id, None
    (doc_len,) = struct.unpack("<i", message[21:25])
    return request_id, bson.decode(message[21 : 21 + doc_len])


def _reply(response_to: int, document: dict) -> bytes:
    payload = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
    return struct.pack("<iiii", 16 + len(payload), 1, response_to, OP_MSG) + payload


class MongoProxy:
    """Forward MongoDB wire traffic to ``upstream_port``; ``reject_auth`` and ``drop_writes_after`` fail on demand."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.reject_auth = False
        self.writes = 0
        self.drop_after: int | None = None
        self.drop_times: int | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_writes_after(self, n: int, times: int | None = None) -> None:
        with self._lock:
            self.drop_after, self.drop_times = self.writes + n, times

    def heal(self) -> None:
        with self._lock:
            self.drop_after = None

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _should_drop(self) -> bool:
        with self._lock:
            self.writes += 1
            if self.drop_after is None or self.writes <= self.drop_after:
                return False
            if self.drop_times is not None:
                self.drop_times -= 1
                if self.drop_times <= 0:
                    self.drop_after = None
            return True

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        write_lock = threading.Lock()

        def pump() -> None:  # server -> client, raw (streamed hello replies included)
            while (data := _recv(upstream)) is not None:
                with write_lock:
                    client.sendall(data)
            _close(client)

        threading.Thread(target=pump, daemon=True).start()
        try:
            while (message := _read_message(client)) is not None:
                request_id, command = _command(message)
                name = next(iter(command), None) if command else None
                if name in ("saslStart", "saslContinue") and self.reject_auth:
                    error = {
                        "ok": 0.0,
                        "errmsg": "Authentication failed.",
                        "code": 18,
                        "codeName": "AuthenticationFailed",
                    }
                    with write_lock:
                        client.sendall(_reply(request_id, error))
                    continue
                if name in ("insert", "update", "delete") and self._should_drop():
                    break
                upstream.sendall(message)
        finally:
            _close(client)
            _close(upstream)


def _recv(sock: socket.socket) -> bytes | None:
    try:
        data = sock.recv(65536)
    except OSError:
        return None
    return data or None


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

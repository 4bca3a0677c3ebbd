"""A local Slack Web API server for the tests: the methods SlackAlert uses, in Slack's wire format.

``users.lookupByEmail``, ``conversations.open``, ``chat.postMessage`` and the file upload flow
(``files.getUploadURLExternal``, a POST of the bytes to the returned upload URL,
``files.completeUploadExternal``). Requests must carry ``Authorization: Bearer <token>`` as the
real API wants. Unknown emails answer ``users_not_found``; emails listed in ``rate_limited``
answer HTTP 429 with ``Retry-After`` that many times first (forever for -1).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "xoxb-test-0000-secret-token"


@dataclass
class SlackState:
    users: dict[str, str]  # email -> user id
    rate_limited: dict[str, int] = field(default_factory=dict)  # email -> remaining 429s (-1: always)
    messages: list[dict] = field(default_factory=list)  # {"channel", "text"}
    files: list[dict] = field(default_factory=list)  # {"channel", "title", "filename", "content"}
    calls: list[str] = field(default_factory=list)
    uploads: dict[str, dict] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


class _Handler(BaseHTTPRequestHandler):
    state: SlackState
    base: str

    def log_message(self, *args):  # quiet
        pass

    def _params(self, body: bytes) -> dict:
        params = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype and body:
            params.update(json.loads(body))
        elif body and "form" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        return params

    def _reply(self, payload: dict, status: int = 200, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlparse(self.path).path
        state = self.state
        if path.startswith("/upload/"):
            upload = state.uploads.get(path.rsplit("/", 1)[1])
            if upload is None:
                self.send_response(404)
                self.end_headers()
                return
            upload["content"] = body.decode()
            data = f"OK - {len(body)}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        method = path.removeprefix("/api/")
        state.calls.append(method)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply({"ok": False, "error": "invalid_auth"})
        params = self._params(body)
        if method == "users.lookupByEmail":
            email = params.get("email", "")
            remaining = state.rate_limited.get(email, 0)
            if remaining:
                if remaining > 0:
                    state.rate_limited[email] = remaining - 1
                return self._reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "0"})
            if email not in state.users:
                return self._reply({"ok": False, "error": "users_not_found"})
            return self._reply({"ok": True, "user": {"id": state.users[email], "profile": {"email": email}}})
        if method == "conversations.open":
            users = params.get("users", "")
            if not users or any(u not in state.users.values() for u in users.split(",")):
                return self._reply({"ok": False, "error": "user_not_found"})
            return self._reply({"ok": True, "channel": {"id": "D" + users.replace(",", "")}})
        if method == "chat.postMessage":
            if not params.get("channel") or not params.get("text"):
                return self._reply({"ok": False, "error": "no_text"})
            state.messages.append({"channel": params["channel"], "text": params["text"]})
            return self._reply({"ok": True, "channel": params["channel"], "ts": f"{next(state.ids)}.000"})
        if method == "files.getUploadURLExternal":
            if not params.get("filename") or not params.get("length"):
                return self._reply({"ok": False, "error": "invalid_arguments"})
            file_id = f"F{next(state.ids)}"
            state.uploads[file_id] = {"filename": params["filename"], "length": int(params["length"])}
            return self._reply({"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id})
        if method == "files.completeUploadExternal":
            done = []
            for item in json.loads(params.get("files", "[]")):
                upload = state.uploads.get(item["id"])
                if upload is None or "content" not in upload:
                    return self._reply({"ok": False, "error": "file_not_found"})
                state.files.append({"channel": params.get("channel_id"), "title": item.get("title"), **upload})
                done.append({"id": item["id"], "title": item.get("title"), "name": upload["filename"]})
            return self._reply({"ok": True, "files": done})
        return self._reply({"ok": False, "error": "unknown_method"}, 404)


class SlackServer:
    """Start with ``with SlackServer(users) as slack:``; ``slack.base_url`` is for ``base_url``."""

    def __init__(self, users: dict[str, str]):
        self.state = SlackState(users=dict(users))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        handler.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.base_url = handler.base + "/api/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

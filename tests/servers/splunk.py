"""A local Splunk HTTP Event Collector: ``POST /services/collector[/event]`` over HTTPS, as documented.

It checks ``Authorization: Splunk <token>`` (401 code 2 when missing, 403 code 4 when wrong),
parses the body as JSON event objects back to back, keeps every event it accepted, answers
``{"text": "Success", "code": 0}``, and fails on demand like a busy or dying indexer:
503 ``Server is busy`` (code 9), 500, 429, or a dropped connection, after N requests.
"""

from __future__ import annotations

import json
import threading

import trustme

from servers.base import FaultInjection, LocalServer, RequestHandler

_DECODER = json.JSONDecoder()


def parse_events(body: bytes) -> list[dict]:
    """Event objects back to back, separated by whitespace or nothing (HEC's batch format)."""
    text = body.decode("utf-8")
    events, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return events
        event, pos = _DECODER.raw_decode(text, pos)
        events.append(event)


class HecHandler(RequestHandler):
    def do_GET(self):
        if self.path == "/_test/stats":  # not a HEC API: lets a benchmark in another process count
            app: HecServer = self.app
            self.send_json(200, {"requests": app.requests, "events": len(app.events)})
        else:
            self.send_json(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self):
        body = self._body()
        app: HecServer = self.app
        if self.path.split("?")[0].rstrip("/") not in ("/services/collector", "/services/collector/event"):
            self.send_json(404, {"text": "The requested URL was not found on this server.", "code": 404})
            return
        auth = self.headers.get("Authorization")
        if not auth:
            self.send_json(401, {"text": "Token is required", "code": 2})
            return
        if auth != f"Splunk {app.token}":
            self.send_json(403, {"text": "Invalid token", "code": 4})
            return
        failure = app.take_failure()
        if failure is not None:
            if failure.mode == "drop":
                self.drop()
                return
            status = int(failure.mode)
            text, code = {503: ("Server is busy", 9), 429: ("Server is busy", 9)}.get(
                status, ("Internal server error", 8)
            )
            self.send_json(status, {"text": text, "code": code})
            return
        try:
            events = parse_events(body)
        except ValueError:
            self.send_json(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
            return
        with app.lock:
            app.events.extend(events)
        self.send_json(200, {"text": "Success", "code": 0})


class HecServer(FaultInjection, LocalServer):
    """The HEC stand-in (HTTPS with a throwaway CA when ``tls``); ``events`` holds what was accepted."""

    def __init__(self, token: str = "token123", port: int | None = None, tls: bool = True):
        self.ca = trustme.CA() if tls else None
        context = None
        if self.ca is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        super().__init__(HecHandler, port, ssl_context=context)
        self.token = token
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self._init_faults()

    def write_ca(self, path) -> str:
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def records(self) -> list[dict]:
        return [e["event"] for e in self.events]

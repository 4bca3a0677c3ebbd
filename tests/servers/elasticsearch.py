"""A local Elasticsearch stand-in: the documented ``_bulk`` NDJSON API, enough for the real client.

It answers ``GET /`` (cluster info) and ``POST [/<index>]/_bulk`` like Elasticsearch 7, 8 or 9
(``X-Elastic-Product`` header, per-item results, and the ``compatible-with`` content negotiation
of the real server: a major accepts ``compatible-with`` of itself and the major before, so an
8.x server refuses the 9.x client's default ``compatible-with=9`` with HTTP 400
``media_type_header_exception``), keeps the documents it indexed by ``_index`` and ``_id`` (so
re-indexing the same id overwrites, as in Elasticsearch), counts requests, and fails on demand:
connections dropped or 5xx/429 answers after N bulk requests, bulk items rejected with 429,
wrong credentials, a user who may write but not read the cluster info (HTTP 403 on ``GET /``).
"""

from __future__ import annotations

import base64
import re
import threading
import uuid

import orjson

from servers.base import FaultInjection, LocalServer, RequestHandler

_COMPATIBLE_WITH = re.compile(r"compatible-with=(\d+)")


class EsHandler(RequestHandler):
    def _es_headers(self) -> dict:
        return {"X-Elastic-Product": "Elasticsearch"}

    def _error(self, status: int, kind: str, reason: str) -> None:
        payload = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}}
        payload["status"] = status
        headers = self._es_headers()
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8"'
        self.send_json(status, payload, headers)

    def _negotiation_error(self, has_body: bool) -> str | None:
        """Why Elasticsearch would refuse this request's Accept/Content-Type pair (None: it accepts it).

        As the real server's ``RestCompatibleVersionHelper``: a ``compatible-with`` version must be the
        server's major or the one before, and a request with a body that asks for one on either
        header must ask for the same one on both.
        """
        app: EsServer = self.app
        accept = self.headers.get("Accept") or ""
        content_type = (self.headers.get("Content-Type") or "") if has_body else ""
        wanted = {}
        for name, value in (("Accept", accept), ("Content-Type", content_type)):
            match = _COMPATIBLE_WITH.search(value)
            if match:
                wanted[name] = int(match.group(1))
                if wanted[name] not in (app.major, app.major - 1):
                    return (
                        f"{name} version must be either version {app.major} or {app.major - 1}, "
                        f"but found {wanted[name]}. {name}={value}"
                    )
        if has_body and wanted and (len(wanted) == 1 or wanted["Accept"] != wanted["Content-Type"]):
            return (
                "A compatible version is required on both Content-Type and Accept headers if either one has "
                "requested a compatible version and the compatible versions must match. "
                f"Accept={accept or None}, Content-Type={content_type or None}"
            )
        return None

    def _checks(self, has_body: bool = False) -> bool:
        """Content negotiation and credentials, as Elasticsearch checks them before any API."""
        app: EsServer = self.app
        accept = _COMPATIBLE_WITH.search(self.headers.get("Accept") or "")
        app.compatible_with.append((self.command, int(accept.group(1)) if accept else None))
        problem = self._negotiation_error(has_body)
        if problem is not None:
            self._error(
                400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]"
            )
            app.refused_media_types.append(problem)
            return False
        if app.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(app.credentials).encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._error(401, "security_exception", f"unable to authenticate user for REST request [{self.path}]")
                return False
        return True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._body()
        if not self._checks():
            return
        if self.path == "/_test/stats":  # not an Elasticsearch API: lets a benchmark in another process count
            app: EsServer = self.app
            docs = {index: len(documents) for index, documents in app.docs.items()}
            stats = {"requests": app.bulk_requests, "info_requests": app.info_requests, "docs": docs}
            self.send_json(200, stats, self._es_headers())
        elif self.path.split("?")[0] in ("", "/"):
            app: EsServer = self.app
            app.info_requests += 1
            if app.info_forbidden:
                action = "cluster:monitor/main"
                self._error(403, "security_exception", f"action [{action}] is unauthorized for user [cm]")
                return
            version = {"number": app.version, "build_flavor": "default", "lucene_version": "10.0.0"}
            info = {"name": "local", "cluster_name": "cloudmarker-tests", "version": version}
            self.send_json(200, {**info, "tagline": "You Know, for Search"}, self._es_headers())
        else:
            self._error(404, "index_not_found_exception", f"no such index [{self.path}]")

    def do_PUT(self):
        self.do_POST()

    def do_POST(self):
        body = self._body()
        path = self.path.split("?")[0]
        if not path.endswith("/_bulk"):
            self._error(404, "illegal_argument_exception", f"no handler for {path}")
            return
        if not self._checks(has_body=bool(body)):
            return
        app: EsServer = self.app
        failure = app.take_failure()
        if failure is not None and failure.mode == "drop":
            self.drop()
            return
        if failure is not None and failure.mode.isdigit():
            self._error(int(failure.mode), "es_rejected_execution_exception", "rejected execution (test failure)")
            return
        default_index = path[: -len("/_bulk")].strip("/") or None
        items = app.bulk(body, default_index, reject_status=failure.item_status if failure else None)
        errors = any(next(iter(item.values()))["status"] >= 300 for item in items)
        self.send_json(200, {"took": 1, "errors": errors, "items": items}, self._es_headers())


class EsServer(FaultInjection, LocalServer):
    """The Elasticsearch stand-in; ``docs[index][_id]`` holds what was indexed.

    ``major``: the Elasticsearch major it behaves as (``GET /`` says ``<major>.x.y``; see the module
    docstring for what it accepts). ``info_forbidden``: ``GET /`` answers 403, as for a user without
    the ``monitor`` cluster privilege. ``info_requests`` counts ``GET /``; ``compatible_with`` lists
    ``(method, Accept's compatible-with or None)`` of every request; ``refused_media_types`` keeps
    why each refused request was refused.
    """

    def __init__(
        self,
        port: int | None = None,
        major: int = 9,
        credentials: tuple[str, str] | None = None,
        info_forbidden: bool = False,
    ):
        super().__init__(EsHandler, port)
        self.major = major
        self.version = {7: "7.17.28", 8: "8.19.4"}.get(major, f"{major}.1.0")
        self.credentials = credentials
        self.info_forbidden = info_forbidden
        self.info_requests = 0
        self.compatible_with: list[tuple[str, int | None]] = []
        self.refused_media_types: list[str] = []
        self.docs: dict[str, dict[str, dict]] = {}
        self.items_received = 0
        self._lock = threading.Lock()
        self._init_faults()

    @property
    def bulk_requests(self) -> int:
        return self.requests

    def bulk(self, body: bytes, default_index: str | None, reject_status: int | None = None) -> list[dict]:
        lines = [line for line in body.split(b"\n") if line.strip()]
        items = []
        i = 0
        with self._lock:
            while i < len(lines):
                action = orjson.loads(lines[i])
                op, meta = next(iter(action.items()))
                index = meta.get("_index") or default_index
                doc_id = meta.get("_id") or uuid.uuid4().hex
                source = orjson.loads(lines[i + 1]) if op != "delete" else None
                i += 2 if op != "delete" else 1
                self.items_received += 1
                if reject_status is not None:
                    error = {"type": "es_rejected_execution_exception", "reason": "rejected execution (test failure)"}
                    items.append({op: {"_index": index, "_id": doc_id, "status": reject_status, "error": error}})
                    continue
                documents = self.docs.setdefault(index, {})
                existed = doc_id in documents
                documents[doc_id] = source
                result = {"_index": index, "_id": doc_id, "_version": 1, "result": "updated" if existed else "created"}
                items.append({op: {**result, "status": 200 if existed else 201}})
        return items

    def sources(self, index: str = "cloudmarker") -> list[dict]:
        return list(self.docs.get(index, {}).values())

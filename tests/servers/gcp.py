"""A local GCP for tests: Cloud Resource Manager v1, Compute v1 and the OAuth token endpoint over real HTTP.

The real google-api-python-client (with its bundled discovery documents, pointed here through
``api_endpoints``) and google-auth (JWT-bearer grant to the key's ``token_uri``) talk to it, so the
tests exercise the same requests, pages and error bodies the real APIs produce. It checks what
the real services check: the JWT assertion's signature against the test key's public key, and a
Bearer token on every API call. Fault switches: throttling (429 with the quota error body) and
projects whose Compute Engine API is disabled (403 accessNotConfigured / SERVICE_DISABLED).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: google-auth signs assertions for Google's token URL whatever token_uri says; Google checks it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SELF_LINK = "https://www.googleapis.com/compute/v1/projects/{project}/{path}"


def make_service_account_key(path: Path, token_uri: str, email: str = "auditor@test-project.iam.gserviceaccount.com"):
    """Write a throwaway service-account key (fresh RSA key) to ``path``; return (key dict, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_id = secrets.token_hex(20)
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    Path(path).write_text(json.dumps(info))
    return info, public_pem


@dataclass
class World:
    """What the fake GCP holds, and its faults."""

    projects: list[dict] = field(default_factory=list)
    firewalls: dict[str, list[dict]] = field(default_factory=dict)
    instances: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # project -> zone -> instances
    zones: list[str] = field(default_factory=lambda: ["us-east1-b", "us-central1-a", "europe-west1-c"])
    compute_disabled: set[str] = field(default_factory=set)
    #: path substring -> how many 429 answers to give before answering normally
    throttle: dict[str, int] = field(default_factory=dict)
    page_size: int = 500

    def add_project(self, project_id: str, number: int, state: str = "ACTIVE") -> dict:
        project = {
            "projectNumber": str(number),
            "projectId": project_id,
            "lifecycleState": state,
            "name": f"Project {project_id}",
            "createTime": "2024-01-01T00:00:00.000Z",
            "parent": {"type": "organization", "id": "4242"},
        }
        self.projects.append(project)
        self.firewalls.setdefault(project_id, [])
        self.instances.setdefault(project_id, {})
        return project

    def add_firewall(self, project_id: str, name: str, **fields) -> dict:
        firewall = {
            "kind": "compute#firewall",
            "id": str(1000 + len(self.firewalls[project_id])),
            "name": name,
            "network": SELF_LINK.format(project=project_id, path="global/networks/default"),
            "priority": 1000,
            "direction": "INGRESS",
            "disabled": False,
            "selfLink": SELF_LINK.format(project=project_id, path=f"global/firewalls/{name}"),
            **fields,
        }
        self.firewalls[project_id].append(firewall)
        return firewall

    def add_instance(self, project_id: str, zone: str, name: str) -> dict:
        instance = {
            "kind": "compute#instance",
            "id": str(abs(hash((project_id, zone, name))) % 10**18),
            "name": name,
            "zone": SELF_LINK.format(project=project_id, path=f"zones/{zone}"),
            "machineType": SELF_LINK.format(project=project_id, path=f"zones/{zone}/machineTypes/e2-small"),
            "status": "RUNNING",
            "networkInterfaces": [{"network": "default", "networkIP": "10.0.0.2"}],
            "selfLink": SELF_LINK.format(project=project_id, path=f"zones/{zone}/instances/{name}"),
        }
        self.instances[project_id].setdefault(zone, []).append(instance)
        return instance


def make_world(projects: int, firewalls: int, instances: int, zones: int, page_size: int = 500) -> World:
    """``projects`` projects, each with ``firewalls`` firewalls and ``instances`` VMs spread over ``zones`` zones."""
    world = World(zones=[f"region{z // 3}-zone-{'abc'[z % 3]}" for z in range(zones)], page_size=page_size)
    for p in range(projects):
        pid = f"proj-{p:04d}"
        world.add_project(pid, 100000 + p)
        for f in range(firewalls):
            world.add_firewall(
                pid, f"fw-{f}", sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "tcp", "ports": [str(22 + f)]}]
            )
        for i in range(instances):
            world.add_instance(pid, world.zones[i % zones], f"vm-{i}")
    return world


def tutorial_world() -> World:
    """The projects of the tutorial's GCP audit: exposed and internal rules, a disabled Compute API, 4 zones."""
    world = World(zones=["us-east1-b", "us-central1-a", "europe-west1-c", "asia-east1-a"], page_size=2)
    world.add_project("web-prod", 101)
    world.add_firewall(
        "web-prod", "allow-ssh", sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "tcp", "ports": ["22"]}]
    )
    world.add_firewall(
        "web-prod",
        "allow-internal",
        sourceRanges=["10.128.0.0/9"],
        allowed=[{"IPProtocol": "tcp", "ports": ["0-65535"]}, {"IPProtocol": "udp"}, {"IPProtocol": "icmp"}],
    )
    world.add_firewall(
        "web-prod", "rdp-and-web", sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "tcp", "ports": ["80", "3389"]}]
    )
    world.add_firewall(
        "web-prod", "block-telnet", sourceRanges=["0.0.0.0/0"], denied=[{"IPProtocol": "tcp", "ports": ["23"]}]
    )
    world.add_firewall(
        "web-prod", "old-ssh", disabled=True, sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "tcp"}]
    )
    for zone, name in (("us-east1-b", "web-1"), ("us-east1-b", "web-2"), ("europe-west1-c", "web-3")):
        world.add_instance("web-prod", zone, name)
    world.add_project("analytics", 102)  # only BigQuery: Compute Engine API disabled
    world.compute_disabled.add("analytics")
    world.add_project("shared-vpc", 103)
    world.add_firewall("shared-vpc", "any-any", sourceRanges=["0.0.0.0/0"], allowed=[{"IPProtocol": "all"}])
    world.add_instance("shared-vpc", "asia-east1-a", "bastion")
    return world  # fmt: skip


def _error(code: int, status: str, reason: str, message: str, details: list | None = None) -> dict:
    error = {"code": code, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}
    error["status"] = status
    if details:
        error["details"] = details
    return {"error": error}


class GCPServer:
    """Serve a :class:`World` on 127.0.0.1; ``endpoints`` go into GCPCloud's ``api_endpoints``."""

    def __init__(self, world: World, latency: float = 0.0):
        self.world = world
        self.latency = latency
        self.public_keys: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.calls: list[tuple[str, str, int]] = []
        #: API calls being answered right now, and the most there ever were at once (token requests excluded)
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def endpoints(self) -> dict[str, str]:
        return {"cloudresourcemanager": f"{self.url}/", "compute": f"{self.url}/compute/v1/"}

    def make_key(self, path: Path, email: str = "auditor@test-project.iam.gserviceaccount.com") -> dict:
        """A throwaway service-account key this server accepts; written to ``path``."""
        info, public_pem = make_service_account_key(path, self.token_uri, email)
        self.public_keys[info["private_key_id"]] = public_pem
        return info

    def api_calls(self, needle: str = "") -> list[tuple[str, str, int]]:
        """Calls other than token requests whose path contains ``needle``."""
        with self._lock:
            return [c for c in self.calls if c[1] != "/token" and needle in c[1]]

    def __enter__(self) -> GCPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- request handling -------------------------------------------------------------------------------

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet test output
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms a call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self._uncount()  # answered: a client's next call may start now without overlapping this one
                with server._lock:  # logged before answering, so a test sees every call its client made
                    server.calls.append((self.command, urllib.parse.urlsplit(self.path).path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                if server.latency:
                    time.sleep(server.latency)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if urllib.parse.urlsplit(self.path).path != "/token":
                    return self._send(404, _error(404, "NOT_FOUND", "notFound", "no such endpoint"))
                status, body = server._token(form)
                self._send(status, body)

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                if parts.path == "/_test/calls":  # for a benchmark whose server runs in another process
                    with server._lock:
                        calls = list(server.calls)
                    data = json.dumps(calls).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                with server._lock:
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                self.counted = True  # until its answer goes out (_send)
                try:
                    self._answer(parts)
                finally:
                    self._uncount()

            def _uncount(self):
                if getattr(self, "counted", False):
                    self.counted = False
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, parts):
                if server.latency:
                    time.sleep(server.latency)
                query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in server.tokens:
                    return self._send(
                        401,
                        _error(401, "UNAUTHENTICATED", "authError", "Request had invalid authentication credentials."),
                    )
                with server._lock:
                    for needle, left in server.world.throttle.items():
                        if left > 0 and needle in parts.path:
                            server.world.throttle[needle] = left - 1
                            body = _error(
                                429,
                                "RESOURCE_EXHAUSTED",
                                "rateLimitExceeded",
                                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.",
                            )
                            break
                    else:
                        body = None
                if body is not None:
                    return self._send(429, body)
                status, body = server._route(parts.path, query)
                self._send(status, body)

        return Handler

    def _token(self, form: dict) -> tuple[int, dict]:
        import google.auth.jwt

        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = google.auth.jwt.decode(
                form["assertion"][0], certs=self.public_keys, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except Exception as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature: {exc}"}
        if "scope" not in claims:
            return 400, {"error": "invalid_scope"}
        token = "ya29.test-" + secrets.token_hex(16)
        with self._lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _page(self, items: list, query: dict) -> tuple[list, str | None]:
        size = min(int(query.get("maxResults") or query.get("pageSize") or self.world.page_size), self.world.page_size)
        start = int(query.get("pageToken") or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    def _route(self, path: str, query: dict) -> tuple[int, dict]:
        world = self.world
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "projects"]:
            if len(parts) == 2:
                page, token = self._page(world.projects, query)
                return 200, {"projects": page, **({"nextPageToken": token} if token else {})}
            project = next((p for p in world.projects if p["projectId"] == parts[2]), None)
            if project is None:
                return 403, _error(403, "PERMISSION_DENIED", "forbidden", "The caller does not have permission")
            return 200, project
        if parts[:3] != ["compute", "v1", "projects"] or len(parts) < 5:
            return 404, _error(404, "NOT_FOUND", "notFound", f"no such endpoint {path}")
        project_id, rest = parts[3], parts[4:]
        project = next((p for p in world.projects if p["projectId"] == project_id), None)
        if project is None:
            return 404, _error(404, "NOT_FOUND", "notFound", f"The resource 'projects/{project_id}' was not found")
        if project_id in world.compute_disabled:
            number = project["projectNumber"]
            message = (
                f"Compute Engine API has not been used in project {number} before or it is disabled. Enable it by "
                f"visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview?project="
                f"{number} then retry.\nIf you enabled this API recently, wait a few minutes."
            )
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {"service": "compute.googleapis.com", "consumer": f"projects/{number}"},
                }
            ]
            return 403, _error(403, "PERMISSION_DENIED", "accessNotConfigured", message, details)
        base = f"https://www.googleapis.com/compute/v1/projects/{project_id}"
        if rest == ["global", "firewalls"]:
            page, token = self._page(world.firewalls.get(project_id, []), query)
            body = {"kind": "compute#firewallList", "id": f"projects/{project_id}/global/firewalls", "items": page}
            return 200, {**body, "selfLink": f"{base}/global/firewalls", **({"nextPageToken": token} if token else {})}
        if rest == ["aggregated", "instances"]:
            zones = world.instances.get(project_id, {})
            flat = [(zone, instance) for zone in world.zones for instance in zones.get(zone, [])]
            page, token = self._page(flat, query)
            items = {}
            for zone in world.zones:  # like the real API: every zone, empty ones with a warning
                found = [instance for z, instance in page if z == zone]
                items[f"zones/{zone}"] = (
                    {"instances": found}
                    if found
                    else {
                        "warning": {
                            "code": "NO_RESULTS_ON_PAGE",
                            "message": "There are no results for scope 'zones/" + zone + "' on this page.",
                            "data": [{"key": "scope", "value": f"zones/{zone}"}],
                        }
                    }
                )
            body = {"kind": "compute#instanceAggregatedList", "id": f"projects/{project_id}/aggregated/instances"}
            body.update(items=items, selfLink=f"{base}/aggregated/instances")
            return 200, {**body, **({"nextPageToken": token} if token else {})}
        if len(rest) == 3 and rest[0] == "zones" and rest[2] == "instances":
            zone = rest[1]
            if zone not in world.zones:
                return 404, _error(
                    404, "NOT_FOUND", "notFound", f"The resource 'projects/{project_id}/zones/{zone}' was not found"
                )
            page, token = self._page(world.instances.get(project_id, {}).get(zone, []), query)
            body = {
                "kind": "compute#instanceList",
                "id": f"projects/{project_id}/zones/{zone}/instances",
                "items": page,
            }
            return 200, {**body, **({"nextPageToken": token} if token else {})}
        return 404, _error(404, "NOT_FOUND", "notFound", f"no such endpoint {path}")


def serve_in_process(directory: str, info: Any, **kwargs: Any) -> None:
    """Run a GCPServer on ``make_world(**kwargs)`` until killed; send (endpoints, key file, project ids) to ``info``.

    A benchmark runs the server in its own process so that its CPU does not compete with the client's.
    ``latency`` (seconds per call) is taken from ``kwargs``; the key file is written into ``directory``.
    """
    latency = kwargs.pop("latency", 0.0)
    world = make_world(**kwargs)
    with GCPServer(world, latency=latency) as server:
        key = Path(directory) / "gcp-key.json"
        key.parent.mkdir(parents=True, exist_ok=True)
        server.make_key(key)
        info.put((server.endpoints, str(key), [p["projectId"] for p in world.projects], server.url))
        threading.Event().wait()

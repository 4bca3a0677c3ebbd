"""A local HTTPS stand-in for Microsoft Entra ID (token endpoint) and Azure Resource Manager.

The real azure-identity and azure-mgmt-* clients talk to it over real TLS (a throwaway trustme CA,
trusted through ``REQUESTS_CA_BUNDLE``). Responses follow the documented ARM JSON shapes (camelCase
``properties``, ``{"value": [...], "nextLink": ...}`` pages, ``{"error": {"code", "message"}}``).
Tests can add latency, throttle paths with 429 + Retry-After, and fail paths with any status.

Beyond the built-in estate (``make_subscription``), any ARM resource is data: ``add_list(path, items)``
serves a paged list endpoint and ``add_object(path, body)`` a single GET, so each resource family's
estate lives in its own module (``tests/servers/azure_<family>.py``) that fills a ``FakeAzure``.
Paths of other hosts (a Key Vault data plane) are served by ``add_route(pattern, handler)``.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import trustme

if TYPE_CHECKING:
    from collections.abc import Callable

#: ARM list paths (lower case, after /subscriptions/{id}) and the resource kind each serves
LIST_PATHS = {
    "providers/microsoft.compute/virtualmachines": "virtual_machine",
    "providers/microsoft.network/applicationgateways": "app_gateway",
    "providers/microsoft.network/loadbalancers": "lb",
    "providers/microsoft.network/networkinterfaces": "nic",
    "providers/microsoft.network/networksecuritygroups": "nsg",
    "providers/microsoft.network/publicipaddresses": "public_ip",
    "providers/microsoft.storage/storageaccounts": "storage_account",
    "resourcegroups": "resource_group",
}
#: List paths (after /subscriptions/{id}) that answer an empty list until an estate module adds items:
#: a subscription without MySQL servers or web apps lists none, as ARM does.
EMPTY_LISTS = ("providers/Microsoft.DBforMySQL/flexibleServers", "providers/Microsoft.Web/sites")
ARM_TYPES = {
    "virtual_machine": "Microsoft.Compute/virtualMachines",
    "app_gateway": "Microsoft.Network/applicationGateways",
    "lb": "Microsoft.Network/loadBalancers",
    "nic": "Microsoft.Network/networkInterfaces",
    "nsg": "Microsoft.Network/networkSecurityGroups",
    "public_ip": "Microsoft.Network/publicIPAddresses",
    "storage_account": "Microsoft.Storage/storageAccounts",
}


def security_rule(nsg_id: str, name: str, default: bool = False, **props: Any) -> dict:
    """A securityRules entry as ARM returns it."""
    kind = "defaultSecurityRules" if default else "securityRules"
    base = {
        "protocol": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "access": "Allow",
        "priority": 100,
        "direction": "Inbound",
        "provisioningState": "Succeeded",
    }
    return {
        "id": f"{nsg_id}/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.Network/networkSecurityGroups/{kind}",
        "properties": {**base, **props},
    }


DEFAULT_RULES = [
    ("AllowVnetInBound", {"sourceAddressPrefix": "VirtualNetwork", "destinationPortRange": "*", "priority": 65000}),
    ("AllowAzureLoadBalancerInBound", {"sourceAddressPrefix": "AzureLoadBalancer", "destinationPortRange": "*"}),
    ("DenyAllInBound", {"sourceAddressPrefix": "*", "destinationPortRange": "*", "access": "Deny"}),
    (
        "AllowVnetOutBound",
        {"sourceAddressPrefix": "VirtualNetwork", "destinationPortRange": "*", "direction": "Outbound"},
    ),
    ("AllowInternetOutBound", {"sourceAddressPrefix": "*", "destinationPortRange": "*", "direction": "Outbound"}),
    (
        "DenyAllOutBound",
        {"sourceAddressPrefix": "*", "destinationPortRange": "*", "access": "Deny", "direction": "Outbound"},
    ),
]


def make_subscription(tenant: str, index: int, vms: int = 2) -> dict[str, Any]:
    """One subscription's resources: ``vms`` VMs (the first fully encrypted, the others not), one of each
    network/storage resource, and an NSG with an SSH-from-Internet rule, a deny rule and the default rules."""
    sid = f"00000000-0000-0000-0000-{index:012d}"
    rg = f"rg-{index}"
    prefix = f"/subscriptions/{sid}/resourceGroups/{rg}/providers"

    def res(rtype: str, name: str, properties: dict, **extra: Any) -> dict:
        return {
            "id": f"{prefix}/{ARM_TYPES[rtype]}/{name}",
            "name": name,
            "type": ARM_TYPES[rtype],
            "location": "eastus",
            "tags": {"env": "test"},
            "properties": properties,
            **extra,
        }

    nsg_id = f"{prefix}/Microsoft.Network/networkSecurityGroups/nsg-{index}"
    nsg = res(
        "nsg",
        f"nsg-{index}",
        {
            "securityRules": [
                security_rule(
                    nsg_id, "allow-ssh", sourceAddressPrefix="Internet", destinationPortRange="22", protocol="Tcp"
                ),
                security_rule(
                    nsg_id,
                    "allow-db-from-office",
                    sourceAddressPrefixes=["203.0.113.0/24"],
                    destinationPortRanges=["1433", "3306"],
                    protocol="Tcp",
                    priority=110,
                ),
            ],
            "defaultSecurityRules": [security_rule(nsg_id, n, default=True, **p) for n, p in DEFAULT_RULES],
            "provisioningState": "Succeeded",
        },
        etag='W/"1"',
    )
    vm_list, views = [], {}
    for v in range(vms):
        name = f"vm-{index}-{v}"
        vm_list.append(
            res(
                "virtual_machine",
                name,
                {
                    "vmId": str(uuid.UUID(int=index * 1000 + v)),
                    "hardwareProfile": {"vmSize": "Standard_B1s"},
                    "storageProfile": {
                        "osDisk": {
                            "osType": "Linux",
                            "name": f"{name}-os",
                            "createOption": "FromImage",
                            "diskSizeGB": 30,
                        },
                        "dataDisks": [
                            {"lun": 0, "name": f"{name}-data0", "createOption": "Empty", "diskSizeGB": 64},
                            {"lun": 1, "name": f"{name}-data1", "createOption": "Empty", "diskSizeGB": 64},
                        ],
                    },
                    "networkProfile": {
                        "networkInterfaces": [{"id": f"{prefix}/Microsoft.Network/networkInterfaces/nic-{index}"}]
                    },
                    "provisioningState": "Succeeded",
                },
            )
        )
        encrypted = v == 0
        views[name.lower()] = {
            "computerName": name,
            "osName": "ubuntu",
            "disks": [
                {"name": f"{name}-os", "encryptionSettings": [{"enabled": encrypted}], "statuses": []},
                {"name": f"{name}-data0", "encryptionSettings": [{"enabled": encrypted}], "statuses": []},
                {"name": f"{name}-data1", "encryptionSettings": [{"enabled": True}], "statuses": []},
            ],
            "extensions": [
                {"name": "AzureDiskEncryptionForLinux", "type": "Microsoft.Azure.Security.AzureDiskEncryptionForLinux"}
            ]
            if encrypted
            else [],
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "time": "2026-01-02T03:04:05.0000000+00:00",
                },
                {"code": "PowerState/running" if encrypted else "PowerState/deallocated", "level": "Info"},
            ],
        }
    return {
        "sub": {
            "id": f"/subscriptions/{sid}",
            "subscriptionId": sid,
            "tenantId": tenant,
            "displayName": f"Subscription {index}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        },
        "virtual_machine": vm_list,
        "views": views,
        "app_gateway": [res("app_gateway", f"agw-{index}", {"sku": {"name": "Standard_v2", "tier": "Standard_v2"}})],
        "lb": [res("lb", f"lb-{index}", {"frontendIPConfigurations": []})],
        "nic": [res("nic", f"nic-{index}", {"ipConfigurations": [], "enableAcceleratedNetworking": False})],
        "nsg": [nsg],
        "public_ip": [
            res(
                "public_ip",
                f"pip-{index}",
                {"ipAddress": f"20.0.0.{index % 250}", "publicIPAllocationMethod": "Static"},
            )
        ],
        "storage_account": [
            res(
                "storage_account",
                f"st{index}",
                {"creationTime": "2026-01-01T00:00:00.0000000Z", "supportsHttpsTrafficOnly": True},
                kind="StorageV2",
                sku={"name": "Standard_LRS", "tier": "Standard"},
            )
        ],
        "resource_group": [
            {
                "id": f"/subscriptions/{sid}/resourceGroups/{rg}",
                "name": rg,
                "type": "Microsoft.Resources/resourceGroups",
                "location": "eastus",
                "properties": {"provisioningState": "Succeeded"},
            }
        ],
    }


#: The ARM error code of an injected failure, by status (409: a resource provider the subscription
#: never registered, as ARM answers a list call for it)
FAILURE_CODES = {403: "AuthorizationFailed", 409: "MissingSubscriptionRegistration"}


def _failure(status: int, path: str) -> dict:
    """The ``error`` of an injected failure, in ARM's words (409 as for an unregistered provider)."""
    code = FAILURE_CODES.get(status, "InternalServerError")
    if status == 409:
        namespace = re.search(r"/providers/([^/]+)", path)
        message = (
            f"The subscription is not registered to use namespace '{namespace.group(1) if namespace else 'X'}'. "
            "See https://aka.ms/rps-not-found for how to register subscriptions."
        )
        return {"code": code, "message": message}
    return {"code": code, "message": f"injected failure {status} for {path}"}


class FakeAzure:
    """The server: ``with FakeAzure(...) as az:`` then point the plugins at ``az.url``; trust ``az.ca_file``."""

    def __init__(
        self,
        directory: Path,
        subscriptions: int = 2,
        vms: int = 2,
        page_size: int = 100,
        latency: float = 0.0,
        tenant: str = "11111111-2222-3333-4444-555555555555",
        client: str = "client-app",
        secret: str = "test-secret-value",
    ):
        self.tenant, self.client, self.secret = tenant, client, secret
        self.page_size, self.latency = page_size, latency
        self.subs = {
            s["sub"]["subscriptionId"]: s for s in (make_subscription(tenant, i, vms) for i in range(subscriptions))
        }
        self.fail: dict[str, int] = {}  # regex on the path -> HTTP status answered every time
        self.throttle: dict[str, int] = {}  # regex on the path -> number of 429s still to answer
        self.retry_after = "1"
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        self.collections: dict[str, list[dict]] = {}  # lower-case ARM path -> items of a paged list endpoint
        self.objects: dict[str, Any] = {}  # lower-case ARM path -> body of a GET
        self.routes: list[tuple[re.Pattern, Callable[..., tuple[int, dict[str, str], Any]]]] = []
        for sid in self.subs:
            for path in EMPTY_LISTS:
                self.add_list(f"/subscriptions/{sid}/{path}", [])
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = str(directory / "azure-test-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._context)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FakeAzure:
        handler = type("Handler", (_Handler,), {"fake": self})
        server = _Server(("127.0.0.1", 0), handler)
        server.context = self._context
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- estate beyond the built-in one -----------------------------------------------------------
    def add_list(self, path: str, items: list[dict]) -> None:
        """Serve ``items`` (paged like every list) at the ARM list path ``path`` (``/subscriptions/...``)."""
        self.collections.setdefault(path.lower().rstrip("/"), []).extend(items)

    def add_object(self, path: str, body: Any) -> None:
        """Serve ``body`` at the ARM path ``path`` (a GET of one resource)."""
        self.objects[path.lower().rstrip("/")] = body

    def add_route(self, pattern: str, handler: Callable[..., tuple[int, dict[str, str], Any]]) -> None:
        """Serve paths matching ``pattern`` (regex, full match): ``handler(method, path, query, headers, body)``
        returns (status, extra headers, JSON payload). Injected failures and throttles apply here too."""
        self.routes.append((re.compile(pattern), handler))

    def subscription_ids(self) -> list[str]:
        """The subscription ids, in order."""
        return list(self.subs)

    # -- what tests look at ------------------------------------------------------------------------
    def counts(self) -> Counter:
        """Number of requests per (method, path) so far."""
        with self._lock:
            return Counter((m, p) for m, p, _ in self.calls)

    def arm_calls(self) -> list[tuple[str, str, int]]:
        """ARM requests only (not login)."""
        with self._lock:
            return [c for c in self.calls if c[1].startswith("/subscriptions")]

    # -- request handling --------------------------------------------------------------------------
    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.calls.append((method, path, status))

    def _injected(self, path: str) -> tuple[int, dict[str, str], dict] | None:
        with self._lock:
            for pattern, remaining in self.throttle.items():
                if remaining > 0 and re.search(pattern, path):
                    self.throttle[pattern] = remaining - 1
                    body = {"error": {"code": "TooManyRequests", "message": "The request is being throttled."}}
                    return 429, {"Retry-After": self.retry_after}, body
            for pattern, status in self.fail.items():
                if re.search(pattern, path):
                    return status, {}, {"error": _failure(status, path)}
        return None

    def login(self, method: str, path: str, form: dict[str, list[str]]) -> tuple[int, dict]:
        base = self.url
        if path == "/common/discovery/instance":
            return 200, {
                "tenant_discovery_endpoint": f"{base}/{self.tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": base[8:], "preferred_cache": base[8:], "aliases": [base[8:]]}],
            }
        m = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
        if m:
            tenant = m.group(1)
            return 200, {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{base}/{tenant}/v2.0",
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
        if m and method == "POST":
            one = {k: v[0] for k, v in form.items()}
            if (
                m.group(1) != self.tenant
                or one.get("client_id") != self.client
                or one.get("client_secret") != self.secret
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                    "in the request is the client secret value, not the client secret ID.",
                    "error_codes": [7000215],
                }
            token = f"token-{uuid.uuid4().hex}"
            with self._lock:
                self._tokens.add(token)
            return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        return 404, {"error": "not_found", "error_description": f"no login endpoint {path}"}

    def arm(self, path: str, query: dict[str, list[str]], authorization: str) -> tuple[int, dict]:
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            known = token in self._tokens
        if not known:
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}
        if "api-version" not in query:
            return 400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version is required"}}
        parts = path.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        if lowered == ["subscriptions"]:
            return self._page(path, query, [s["sub"] for s in self.subs.values()])
        sub = self.subs.get(parts[1]) if len(parts) > 1 else None
        if sub is None:
            return 404, {
                "error": {
                    "code": "SubscriptionNotFound",
                    "message": f"The subscription '{parts[1]}' could not be found.",
                }
            }
        rest = "/".join(lowered[2:])
        if not rest:
            return 200, sub["sub"]
        key = path.lower().rstrip("/")
        if rest in LIST_PATHS:  # the built-in estate, then any items add_list put at the same path
            return self._page(path, query, sub[LIST_PATHS[rest]] + self.collections.get(key, []))
        if key in self.collections:
            return self._page(path, query, self.collections[key])
        if key in self.objects:
            return 200, self.objects[key]
        m = re.fullmatch(
            r"resourcegroups/[^/]+/providers/microsoft\.compute/virtualmachines/([^/]+)/instanceview", rest
        )
        if m and m.group(1) in sub["views"]:
            return 200, sub["views"][m.group(1)]
        return 404, {"error": {"code": "ResourceNotFound", "message": f"no resource at {path}"}}

    def _page(self, path: str, query: dict[str, list[str]], items: list[dict]) -> tuple[int, dict]:
        start = int(query.get("$skiptoken", ["0"])[0])
        end = start + self.page_size
        body: dict[str, Any] = {"value": items[start:end]}
        if end < len(items):
            body["nextLink"] = f"{self.url}{path}?api-version={query['api-version'][0]}&$skiptoken={end}"
        return 200, body


def _request_id() -> str:
    """A random GUID, as ARM's x-ms-request-id (formatted directly: ``uuid.uuid4()`` costs a benchmark's CPU)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen() runs in the constructor, so the backlog must be a class attribute: with the default
    # of 5, a burst of new connections (one per client thread) overflows it while the serving
    # thread does TLS handshakes, and the dropped SYNs are retried by the kernel only after 1 s.
    request_queue_size = 256
    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs on the connection's own thread, as on a real server: on the
        # listening socket it would run in the accept loop, one connection after the other.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: avoid 40 ms delayed-ACK stalls
    fake: FakeAzure
    _date: tuple[int, str] = (0, "")

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, formatted once a second rather than once a response (a benchmark's CPU)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        second, text = _Handler._date
        if second != now:
            text = super().date_time_string(now)
            _Handler._date = (now, text)
        return text

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers: dict[str, str] = {}
        if path == "/_test/calls":  # for a benchmark running the server in another process
            with self.fake._lock:
                every = list(self.fake.calls)  # ?all=1: the token requests too
            calls = every if "all" in query else self.fake.arm_calls()
            data = json.dumps([list(c) for c in calls]).encode()
            if method == "POST":
                with self.fake._lock:
                    self.fake.calls.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.fake.latency:
            time.sleep(self.fake.latency)
        route = next((h for pattern, h in self.fake.routes if pattern.fullmatch(path)), None)
        if route is not None:
            injected = self.fake._injected(path)
            status, headers, payload = injected or route(method, path, query, self.headers, body)
        elif path.startswith("/subscriptions"):
            injected = self.fake._injected(path)
            if injected:
                status, headers, payload = injected
            else:
                status, payload = self.fake.arm(path, query, self.headers.get("Authorization", ""))
        else:
            status, payload = self.fake.login(method, path, parse_qs(body))
        self.fake._record(method, path, status)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", _request_id())
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")


def plugin_params(az: FakeAzure, **extra: Any) -> dict[str, Any]:
    """The params of an Azure cloud plugin that talks to ``az`` with its service principal (no retry backoff)."""
    return {
        "tenant": az.tenant,
        "client": az.client,
        "secret": az.secret,
        "authority_host": az.url,
        "resource_manager_url": az.url,
        "retry_backoff": 0,
        **extra,
    }


def serve_in_process(directory: str, info: Any, **kwargs: Any) -> None:
    """Run a FakeAzure until killed, sending (url, ca_file, tenant, client, secret, subscription ids) to ``info``.

    A benchmark runs the server in its own process so that its CPU does not compete with the client's.
    """
    latency = kwargs.pop("latency", 0.0)
    with FakeAzure(Path(directory), **kwargs) as az:
        az.latency = latency
        info.put((az.url, az.ca_file, az.tenant, az.client, az.secret, list(az.subs)))
        threading.Event().wait()

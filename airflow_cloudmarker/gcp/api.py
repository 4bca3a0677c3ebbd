"""The GCP API calls GCPCloud makes: clients built once per thread, pages followed, errors classified.

Why a module of its own: googleapiclient's HTTP object (httplib2) is not thread-safe, so each
thread gets its own clients; the discovery documents bundled with the library are parsed once
per process (parsing Compute's 5 MB document costs more than an API call); every call goes through
``execute(num_retries=...)``, which retries 429, 5xx and 403 rate-limit answers with exponential
backoff; and the one place that reads an ``HttpError`` decides what "this project cannot be read"
looks like, so the plugin can report it in one line and go on. A project's collections
(``firewalls.list``, ``instances.aggregatedList``) are fetched a page ahead on a small thread
pool shared like the clients (:class:`Prefetched`), so a project's independent calls overlap.
"""

from __future__ import annotations

import functools
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

#: Retries of a throttled (429, 403 rateLimitExceeded) or failing (5xx) call; backoff 1, 2, 4 ... s (random).
NUM_RETRIES = 6
HTTP_TIMEOUT_SECONDS = 60
#: service name -> version, as in the bundled discovery documents.
SERVICES = {"cloudresourcemanager": "v1", "compute": "v1"}
#: 403 reasons that mean "slow down", not "forbidden"; the client retries them.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
#: Threads fetching pages ahead, per :class:`ClientPool` (per process and credentials): two
#: collections of each of the ``max_parallel_shards`` (8) projects a fetch task reads at once.
#: More demand than this queues, and a page still queued when its reader wants it is fetched by
#: the reader itself, so a busy pool never makes a project slower than reading it call by call.
PREFETCH_THREADS = 16


#: The methods GCPCloud calls, per service and resource. Clients are built from discovery documents
#: trimmed to these: building Compute's ~900 methods costs ~0.1 s of CPU per client, these 5 almost nothing.
METHODS = {
    "cloudresourcemanager": {"projects": ("list", "get")},
    "compute": {"firewalls": ("list",), "instances": ("list", "aggregatedList")},
}


@functools.cache
def discovery_document(service: str) -> dict:
    """The discovery document bundled in google-api-python-client, parsed once per process.

    Trimmed to the methods in :data:`METHODS` (schemas and parameters untouched).
    """
    from googleapiclient import discovery_cache

    text = discovery_cache.get_static_doc(service, SERVICES[service])
    if text is None:  # pragma: no cover - the library always bundles these two
        raise RuntimeError(f"google-api-python-client has no bundled discovery document for {service}")
    document = json.loads(text)
    document["methods"] = {}
    document["resources"] = {
        name: {"methods": {m: document["resources"][name]["methods"][m] for m in methods}}
        for name, methods in METHODS[service].items()
    }
    return document


class ClientPool:
    """Clients of one set of credentials and endpoints, plus one HTTP connection per thread.

    The clients (built from the discovery documents: ~30 ms of CPU each) are shared; httplib2 is
    not thread-safe, so each thread executes requests over its own authorized HTTP object. The pool
    is shared by every GCPCloud of the process with the same credentials (:func:`client_pool`), so
    the mapped fetch tasks that ``cloudmarker -n`` runs one after another in one process build
    their clients once.
    """

    def __init__(self, credentials: Any, endpoints: Mapping[str, str]):
        self._credentials = credentials
        self._endpoints = dict(endpoints)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str], Any] = {}
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` on the pool's prefetch threads (long-lived: each keeps its HTTP connection)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="cloudmarker-gcp")
        return self._executor.submit(fn, *args)

    def http(self) -> Any:
        """This thread's authorized HTTP object."""
        http = getattr(self._local, "http", None)
        if http is None:
            import google_auth_httplib2
            import httplib2

            http = self._local.http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=HTTP_TIMEOUT_SECONDS)
            )
        return http

    def resource(self, service: str, name: str) -> Any:
        """``client.<name>()``, built once (creating a resource parses its methods)."""
        key = (service, name)
        with self._lock:
            if key not in self._resources:
                from google.api_core.client_options import ClientOptions
                from googleapiclient import discovery

                endpoint = self._endpoints.get(service)
                client = discovery.build_from_document(
                    discovery_document(service),
                    http=self.http(),
                    client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
                )
                self._resources[key] = getattr(client, name)()
            return self._resources[key]


@functools.lru_cache(maxsize=16)
def _cached_pool(credentials: Any, endpoints: tuple[tuple[str, str], ...]) -> ClientPool:
    return ClientPool(credentials, dict(endpoints))


def client_pool(credentials: Any, endpoints: Mapping[str, str] | None = None) -> ClientPool:
    """The process's :class:`ClientPool` for these credentials (by identity) and endpoints."""
    return _cached_pool(credentials, tuple(sorted((endpoints or {}).items())))


class GCPApi:
    """The calls GCPCloud makes (Cloud Resource Manager v1, Compute v1), counted per GCPCloud.

    ``endpoints`` maps a service name to a base URL (a Private Service Connect endpoint, or a
    local test server); the base URL includes the service path (``.../compute/v1/``).
    """

    def __init__(self, credentials: Any, endpoints: Mapping[str, str] | None = None):
        self._pool = client_pool(credentials, endpoints)
        self._lock = threading.Lock()
        self.calls = 0

    def _resource(self, service: str, name: str) -> Any:
        return self._pool.resource(service, name)

    def prefetched(self, pages: Iterator[Any]) -> Prefetched:
        """``pages`` with its first page requested now, and each next one while the caller reads the last."""
        return Prefetched(self._pool.submit, pages)

    def execute(self, request: Any) -> dict:
        """Run one request with retries; count it."""
        with self._lock:
            self.calls += 1
        return request.execute(http=self._pool.http(), num_retries=NUM_RETRIES)

    def _pages(self, collection: Any, request: Any, next_method: str) -> Iterator[dict]:
        while request is not None:
            response = self.execute(request)
            yield response
            request = getattr(collection, next_method)(request, response)

    def list_projects(self) -> Iterator[dict]:
        """Every project the credentials can see (all pages of projects.list)."""
        projects = self._resource("cloudresourcemanager", "projects")
        for page in self._pages(projects, projects.list(), "list_next"):
            yield from page.get("projects") or []

    def get_project(self, project_id: str) -> dict:
        """One project by id (projects.get): a shard names its projects by id only."""
        projects = self._resource("cloudresourcemanager", "projects")
        return self.execute(projects.get(projectId=project_id))

    def firewall_pages(self, project_id: str) -> Iterator[list[dict]]:
        """The project's firewalls, one list per page."""
        firewalls = self._resource("compute", "firewalls")
        for page in self._pages(firewalls, firewalls.list(project=project_id), "list_next"):
            yield page.get("items") or []

    def instance_pages(self, project_id: str, zone: str | None = None) -> Iterator[tuple[list[tuple[str, dict]], list]]:
        """Yield ``([(zone, instance), ...], unreachable zones)`` per page of the project's VM instances.

        Without ``zone``: one ``aggregatedList`` (every zone, pages followed), so the number of
        calls does not grow with the number of zones. With ``zone``: ``list`` of that zone only.
        """
        instances = self._resource("compute", "instances")
        if zone:
            for page in self._pages(instances, instances.list(project=project_id, zone=zone), "list_next"):
                yield [(zone, instance) for instance in page.get("items") or []], []
            return
        request = instances.aggregatedList(project=project_id)
        for page in self._pages(instances, request, "aggregatedList_next"):
            found = []
            for scope, scoped in (page.get("items") or {}).items():
                scope_zone = scope.rpartition("/")[2]
                found.extend((scope_zone, instance) for instance in (scoped or {}).get("instances") or [])
            yield found, list(page.get("unreachables") or [])


_END = object()


class Prefetched:
    """The pages of one collection, fetched one page ahead of the reader on a shared thread pool.

    Created, it asks for the first page at once, so a project's collections (and its
    ``projects.get``, made by the reader meanwhile) are in flight together rather than one after
    another. Pages still come in order, each once, and at most one page waits unread, so memory
    stays at a page per collection however large the project. A page's error is raised where the
    reader asks for that page, as if it had made the call itself. A reader that stops early (a
    project found unreadable) just drops the object; the call in flight finishes on its own.
    Prefetch tasks never wait for readers, so the bounded pool cannot deadlock; a page still
    queued when the reader wants it is fetched in the reader's thread instead.
    """

    def __init__(self, submit: Callable[..., Future], pages: Iterator[Any]):
        self._submit = submit
        self._pages = pages
        self._future = submit(next, pages, _END)

    def _take(self) -> Any:
        future = self._future
        # Not started yet (every prefetch thread busy): fetch it here rather than wait in the queue.
        return next(self._pages, _END) if future.cancel() else future.result()

    def __iter__(self) -> Iterator[Any]:
        while True:
            page = self._take()
            if page is _END:
                return
            self._future = self._submit(next, self._pages, _END)
            yield page


def error_summary(exc: Exception) -> tuple[int | None, str, str]:
    """``(HTTP status, reason, first line of the message)`` of a googleapiclient ``HttpError``."""
    status = getattr(getattr(exc, "resp", None), "status", None)
    reason, message = "", ""
    try:
        error = json.loads(getattr(exc, "content", b"") or b"{}").get("error") or {}
        message = str(error.get("message") or "")
        errors = error.get("errors") or []
        details = error.get("details") or []
        reason = str(
            (errors[0].get("reason") if errors and isinstance(errors[0], dict) else "")
            or next((d.get("reason") for d in details if isinstance(d, dict) and d.get("reason")), "")
            or error.get("status")
            or ""
        )
    except (ValueError, AttributeError, TypeError):
        message = str(exc)
    first = message.strip().splitlines()[0] if message.strip() else str(status)
    return (int(status) if status is not None else None), reason, first


def is_project_unavailable(exc: Exception) -> bool:
    """True for a 403 that is not a rate limit (API disabled, permission denied) or a 404 project.

    Such a project is skipped and reported; anything else (401, 5xx and 429 after the retries,
    network errors) fails the task, because it says the audit itself is broken.
    """
    from googleapiclient.errors import HttpError

    if not isinstance(exc, HttpError):
        return False
    status, reason, _ = error_summary(exc)
    return status == 404 or (status == 403 and reason not in RATE_LIMIT_REASONS)

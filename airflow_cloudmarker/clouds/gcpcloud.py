"""GCPCloud: projects, firewalls (and their rules) and VM instances of every project an account sees.

Each project is one shard (``shards()`` lists them, ``read(project_id)`` reads one): the audit DAG
packs the projects into at most ``max_shard_groups`` mapped fetch tasks, each reading
``max_parallel_shards`` projects at once, so large organisations are read in parallel by
Airflow's workers, and a failing project is named in its task's error without losing the others.
Instances of every zone come from ONE ``aggregatedList`` call per project (plus its pages), so
the number of calls does not grow with the number of zones; a project's ``projects.get``,
``firewalls.list`` and ``aggregatedList`` run at once, its pages fetched one ahead of the reader.

A project whose Compute Engine API is disabled, or that the account may not read, is normal in
real organisations (projects used only for BigQuery or billing). It is reported in one WARNING
line (``GCP project <id> skipped: ...``) and its project record carries ``ext.compute_error``;
the task still succeeds, so such projects neither stop the others nor turn every daily run red.
Any other error (bad credentials, 5xx or 429 still failing after the retries) fails the task.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_cloudmarker import util
from airflow_cloudmarker.gcp import api as gcp_api
from airflow_cloudmarker.gcp.credentials import GCPCredentials, load_credentials
from airflow_cloudmarker.gcp.firewall import firewall_rules

log = logging.getLogger(__name__)

CLOUD_TYPE = "gcp"


def _check_optional_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"GCPCloud param {name} must be a non-empty string or null, not {value!r}")
    return value.strip()


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"GCPCloud param {name} must be a positive integer, not {value!r}")
    return value


class GCPCloud:
    """Read GCP projects, firewalls, firewall rules and VM instances.

    Params:
        key_file_path: a service-account JSON key file (relative paths are resolved against the
            current directory). When unset, ``conn_id`` is used, else Application Default Credentials.
        zone: only read instances of this zone (``us-east1-b``); null (the default) reads every zone.
        conn_id: an Airflow Google Cloud connection holding the key JSON (extra ``keyfile_dict``)
            or its path (extra ``key_path``).
        processes: accepted for configs written for the original Cloudmarker; Airflow's mapped
            fetch tasks (groups of projects) replace its process pool.
        threads: how many projects ``read()`` without a shard (your own code) reads at once; in an
            audit the fetch task reads ``max_parallel_shards`` projects at once.
        api_endpoints: base URLs per service, e.g. ``{compute: https://.../compute/v1/}`` for a
            Private Service Connect endpoint; unset means Google's public endpoints.
        _max_projects: read at most this many projects (trying out a config on a big organisation).

    Example config::

        plugins:
          mygcpcloud:
            plugin: cloudmarker.clouds.gcpcloud.GCPCloud
            params:
              key_file_path: keyfile.json
              zone: null
    """

    #: Projects one fetch task reads at once, and fetch tasks of one audit run at once.
    max_parallel_shards = 8

    def __init__(
        self,
        key_file_path: str | None = None,
        zone: str | None = None,
        conn_id: str | None = None,
        processes: int = 4,
        threads: int = 8,
        api_endpoints: Mapping[str, str] | None = None,
        _max_projects: int | None = None,
    ):
        self._key_file_path = _check_optional_str("key_file_path", key_file_path)
        self._zone = _check_optional_str("zone", zone)
        self._conn_id = _check_optional_str("conn_id", conn_id)
        _check_positive_int("processes", processes)
        self._threads = _check_positive_int("threads", threads)
        self._max_projects = _check_positive_int("_max_projects", _max_projects, allow_none=True)
        if api_endpoints is not None:
            unknown = set(api_endpoints) - set(gcp_api.SERVICES) if isinstance(api_endpoints, Mapping) else None
            if unknown is None or unknown or not all(isinstance(v, str) for v in api_endpoints.values()):
                raise ValueError(
                    "GCPCloud param api_endpoints must map service names "
                    f"({', '.join(gcp_api.SERVICES)}) to base URLs, not {api_endpoints!r}"
                )
        self._endpoints = dict(api_endpoints or {})
        self._auth: GCPCredentials | None = None
        self._api: gcp_api.GCPApi | None = None
        self._lock = threading.Lock()
        self._read = 0
        self._skipped: list[str] = []

    # -- lazy set-up: constructors must not touch files or the network -----------------------------

    def _connect(self) -> gcp_api.GCPApi:
        if self._api is None:
            self._auth = load_credentials(self._key_file_path, self._conn_id)
            log.info("GCPCloud: credentials from %s (account %s)", self._auth.source, self._auth.client_email)
            self._api = gcp_api.GCPApi(self._auth.credentials, self._endpoints)
        return self._api

    @property
    def calls(self) -> int:
        """API calls made so far (token requests excluded)."""
        return self._api.calls if self._api else 0

    def api_counts(self) -> dict[str, int]:
        """The API calls of this instance, for the fetch task's summary line (token requests excluded)."""
        return {"api_calls": self.calls}

    # -- plugin protocol ----------------------------------------------------------------------------

    def _projects(self) -> list[dict]:
        api = self._connect()
        projects, inactive = [], 0
        for project in api.list_projects():
            if project.get("lifecycleState", "ACTIVE") != "ACTIVE":
                inactive += 1  # being deleted: Compute calls would only fail
                continue
            projects.append(project)
            if self._max_projects and len(projects) >= self._max_projects:
                break
        log.info("GCPCloud: %d active projects to read (%d inactive ignored)", len(projects), inactive)
        return projects

    def shards(self) -> list[str]:
        """Project ids, one shard each (the framework packs them into a bounded number of tasks)."""
        return [p["projectId"] for p in self._projects()]

    def read(self, shard: str | None = None) -> Iterator[dict]:
        """Yield the records of one project (a shard), or of every project."""
        items: list = self._projects() if shard is None else [shard]
        yield from util.stream_parallel([functools.partial(self._read_project, item) for item in items], self._threads)

    def done(self) -> None:
        """Log what was read and which projects were skipped."""
        log.info(
            "GCPCloud: read %d projects, skipped %d%s; %d API calls",
            self._read,
            len(self._skipped),
            f" ({', '.join(self._skipped)})" if self._skipped else "",
            self.calls,
        )

    # -- one project ----------------------------------------------------------------------------------

    def _skip(self, project_id: str, exc: Exception) -> str:
        status, reason, message = gcp_api.error_summary(exc)
        line = f"HTTP {status} {reason}: {message}".replace("\n", " ")
        log.warning("GCP project %s skipped: Compute Engine API disabled or access denied (%s)", project_id, line)
        with self._lock:
            self._skipped.append(project_id)
        return line

    def _read_project(self, project: str | dict) -> Iterator[dict]:
        """One project's records: the project, its firewalls (and their rules), its instances.

        Its three calls are independent, so they run at once: the firewalls' and the instances'
        first pages are requested (``Prefetched``) before ``projects.get`` is made, and every
        further page is requested while the one before is turned into records. What the records
        say is decided in the old order: an unreadable project (``get``) is skipped, a project
        whose firewalls cannot be read is reported with ``compute_error`` and its instances are
        not read, and any other error of any call fails the read.
        """
        api = self._connect()
        project_id = project if isinstance(project, str) else project.get("projectId")
        firewall_pages = api.prefetched(api.firewall_pages(project_id))
        instance_pages = api.prefetched(api.instance_pages(project_id, self._zone))
        if isinstance(project, str):
            try:
                project = api.get_project(project)
            except Exception as exc:
                if not gcp_api.is_project_unavailable(exc):
                    raise
                self._skip(project, exc)
                return
        base_ext = {
            "cloud_type": CLOUD_TYPE,
            "project_id": project_id,
            "project_name": project.get("name"),
            "zone": None,
            "client_email": self._auth.client_email if self._auth else None,
        }
        project_record = {
            "raw": project,
            "ext": {**base_ext, "record_type": "project"},
            "com": {"cloud_type": CLOUD_TYPE, "reference": f"//cloudresourcemanager.googleapis.com/{project_id}"},
        }
        pages = iter(firewall_pages)
        try:
            first_page = next(pages, [])
        except Exception as exc:
            if not gcp_api.is_project_unavailable(exc):
                raise
            project_record["ext"]["compute_error"] = self._skip(project_id, exc)
            yield project_record
            return
        yield project_record
        for page in _chain_first(first_page, pages):
            for firewall in page:
                yield {
                    "raw": firewall,
                    "ext": {**base_ext, "record_type": "firewall"},
                    "com": {"cloud_type": CLOUD_TYPE, "reference": firewall.get("selfLink")},
                }
                yield from firewall_rules(firewall, base_ext)
        for found, unreachable in instance_pages:
            if unreachable:
                log.warning(
                    "GCP project %s: zones unreachable, their instances are missing: %s", project_id, unreachable
                )
            for zone, instance in found:
                yield {
                    "raw": instance,
                    "ext": {**base_ext, "record_type": "instance", "zone": zone},
                    "com": {"cloud_type": CLOUD_TYPE, "record_type": "compute", "reference": instance.get("selfLink")},
                }
        with self._lock:
            self._read += 1


def _chain_first(first: list, rest: Iterator[list]) -> Iterator[list]:
    yield first
    yield from rest

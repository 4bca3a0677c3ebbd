"""Helpers for plugin authors: merging records and reading port ranges.

These are public: users' own plugins import them, as plugins written for the original
Cloudmarker imported ``cloudmarker.util``.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: The severities an event (a finding) can have, most severe first.
SEVERITIES = ("critical", "high", "medium", "low", "info")


def check_severity(plugin: str, severity: Any) -> str:
    """Return ``severity`` if it is one of :data:`SEVERITIES`, else raise one clear error naming the param.

    Event plugins take a ``severity`` param; checking it in the constructor turns a typo into a
    config error at parse time instead of a wrong field in every event.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"{plugin} param severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return severity


def merge_dicts(*dicts: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively into a new dict; later mappings win.

    Keys present in only one mapping are kept. When both sides hold a mapping for the same key,
    the two are merged the same way; any other value (lists included) from the later mapping
    replaces the earlier one. The inputs are never modified.
    """
    result: dict[str, Any] = {}
    for d in dicts:
        if d is None:
            continue
        for key, value in d.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = merge_dicts(result[key], value)
            elif isinstance(value, Mapping):
                result[key] = merge_dicts(value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def expand_port_ranges(port_ranges: Iterable[str | int]) -> set[int]:
    """Expand port specifications such as ``22``, ``"8000-8080"`` or ``"*"`` to a set of ports.

    Firewall rules describe ports as strings or ranges; events need set arithmetic on ports.
    Invalid entries raise ``ValueError`` naming the entry, since a silently skipped range could
    hide an exposed port.
    """
    ports: set[int] = set()
    for spec in port_ranges:
        text = str(spec).strip()
        if text in ("*", "all", "any"):
            text = "0-65535"
        if "-" in text:
            low_text, _, high_text = text.partition("-")
            try:
                low, high = int(low_text), int(high_text)
            except ValueError:
                raise ValueError(f"invalid port range {spec!r}") from None
            if not 0 <= low <= high <= 65535:
                raise ValueError(f"invalid port range {spec!r}")
            ports.update(range(low, high + 1))
        else:
            try:
                port = int(text)
            except ValueError:
                raise ValueError(f"invalid port {spec!r}") from None
            if not 0 <= port <= 65535:
                raise ValueError(f"invalid port {spec!r}")
            ports.add(port)
    return ports


def friendly_string(text: str) -> str:
    """Return a human-friendly name for an identifier (``azure`` -> ``Azure``, ``gcp`` -> ``Google Cloud Platform``)."""
    names = {"azure": "Azure", "gcp": "Google Cloud Platform", "mock": "Mock"}
    return names.get(str(text).lower(), str(text))


def mask_secret(value: Any) -> None:
    """Register a secret (password, token, key) with Airflow's log masker so it never reaches logs.

    Plugins call this in their constructor for every secret param. Outside Airflow (plain unit
    tests of a plugin) there is nothing to register with, so it does nothing.
    """
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as airflow_mask_secret
    except ImportError:  # pragma: no cover - Airflow always present in this package
        return
    airflow_mask_secret(value)


_DONE = object()


def stream_parallel(jobs: Iterable[Callable[[], Iterable[Any]]], threads: int, buffer: int = 1000) -> Iterator[Any]:
    """Run ``jobs`` (each returns an iterable) on ``threads`` threads and yield their items as they come.

    For cloud plugins reading several subscriptions, projects or resources at once: API calls wait
    on the network, so threads give the concurrency. Items pass through a bounded queue, so memory
    stays at ``buffer`` items however large the cloud. The first job error is raised in the caller
    after the other jobs are stopped; closing the generator early (a record limit, a failing
    store) stops the workers too.
    """
    items: queue.Queue = queue.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(job: Callable[[], Iterable[Any]]) -> None:
        try:
            for item in job():
                if not put((None, item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_DONE, exc))
            return
        put((_DONE, None))

    job_list = list(jobs)
    if threads <= 1 or len(job_list) <= 1:
        for job in job_list:
            yield from job()
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(threads, len(job_list) or 1)), thread_name_prefix="cloudmarker")
    try:
        for job in job_list:
            pool.submit(run, job)
        remaining = len(job_list)
        while remaining:
            marker, value = items.get()
            if marker is _DONE:
                remaining -= 1
                if value is not None:
                    raise value
            else:
                yield value
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)

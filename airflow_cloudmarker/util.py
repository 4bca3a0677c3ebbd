"""Helpers for plugin authors: merging records and reading port ranges.

These are public: users' own plugins import them, as plugins written for the original
Cloudmarker imported ``cloudmarker.util``.
"""

from __future__ import annotations

import copy
import functools
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from airflow_cloudmarker import workers

#: The severities an event (a finding) can have, most severe first.
SEVERITIES = ("critical", "high", "medium", "low", "info")

log = logging.getLogger("airflow_cloudmarker.util")


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


def expand_port_ranges(port_ranges: Iterable[str | int], source: str = "") -> set[int]:
    """Expand port specifications such as ``22``, ``"8000-8080"`` or ``"*"`` to a set of ports.

    Firewall rules describe ports as strings or ranges; events need set arithmetic on ports.
    Port lists come from cloud data, so a malformed entry (``"80-abc"``), a reversed range
    (``"81-80"``) or a port outside 0-65535 is skipped with one warning naming the entry (and
    ``source``, for example the rule's reference) and the valid entries still count: raising
    here would hide every other port of the rule, exposed ones included. Never raises for an
    iterable of entries.
    """
    ports: set[int] = set()
    for low, high in port_spans(port_ranges, source):
        ports.update(range(low, high + 1))
    return ports


def port_spans(port_ranges: Iterable[str | int], source: str = "") -> list[tuple[int, int]]:
    """The valid entries of ``port_ranges`` as ``(low, high)`` spans; bad ones skipped as by ``expand_port_ranges``.

    For checks that ask whether a few ports are covered: ``"*"`` is one span here, where the
    expanded set would hold 65,536 ports (about 2 ms per rule to build).
    """
    spans = []
    for spec in port_ranges:
        span = _port_span(spec)
        if isinstance(span, str):
            where = f" of {source}" if source else ""
            log.warning("skipping port entry %r%s: %s", spec, where, span)
            continue
        spans.append(span)
    return spans


_PORT_SPAN = re.compile(r"(\d+)(?:\s*-\s*(\d+))?", re.ASCII)


def _port_span(spec: Any) -> tuple[int, int] | str:
    """``(low, high)`` for one port entry, or why the entry is invalid."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        return "not a port number or range"
    text = str(spec).strip()
    if text.lower() in ("*", "all", "any"):
        return (0, 65535)
    match = _PORT_SPAN.fullmatch(text)
    if not match:
        return "port outside 0-65535" if re.fullmatch(r"-\d+", text) else "not a port number or range (low-high)"
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > 65535 or high > 65535:
        return "port outside 0-65535"
    if low > high:
        return "reversed range (low is above high)"
    return (low, high)


def friendly_string(text: str) -> str:
    """Return a human-friendly name for an identifier (``azure`` -> ``Azure``, ``gcp`` -> ``Google Cloud Platform``)."""
    names = {"azure": "Azure", "gcp": "Google Cloud Platform", "aws": "AWS", "mock": "Mock"}
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
    job_list = list(jobs)
    if threads <= 1 or len(job_list) <= 1:
        for job in job_list:
            yield from job()
        return
    relay = _Relay(buffer)
    # kept threads (``workers``), not a pool per call: a fetch task calls this for each of thousands of shards
    wait = workers.run_in_order([functools.partial(relay.run, job) for job in job_list], threads, relay.stop)
    try:
        yield from relay.receive(len(job_list))
    finally:
        relay.stop.set()
        wait()


class _Relay:
    """The bounded queue between ``stream_parallel``'s worker threads and its consumer.

    Each job ends with a ``_DONE`` marker carrying its error (or None), so the consumer knows
    when every job is over and raises the first error; ``stop`` releases workers blocked on a
    full queue once the consumer is gone.
    """

    def __init__(self, buffer: int):
        self.items: queue.Queue = queue.Queue(maxsize=buffer)
        self.stop = threading.Event()

    def put(self, item: Any) -> bool:
        """Queue ``item``, waiting for room; False when the consumer stopped first."""
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self, job: Callable[[], Iterable[Any]]) -> None:
        """A worker thread's body: ``job``'s items, then its ``_DONE`` marker."""
        try:
            for item in job():
                if not self.put((None, item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self.put((_DONE, exc))
            return
        self.put((_DONE, None))

    def receive(self, jobs: int) -> Iterator[Any]:
        """The items of ``jobs`` running jobs as they come, until each is done; a job's error is raised."""
        remaining = jobs
        while remaining:
            marker, value = self.items.get()
            if marker is _DONE:
                remaining -= 1
                if value is not None:
                    raise value
            else:
                yield value

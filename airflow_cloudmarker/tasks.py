"""What each task of an audit DAG does: run one plugin over record batches.

The functions here are the bodies of the tasks that ``factory`` wires together. They construct
the plugin at run time (never at parse time: no network in the DAG processor), stream record
batches in and out through ``batches``, stamp ``com`` and log what happened in numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_cloudmarker import batches
from airflow_cloudmarker import plugins as plugin_loader
from airflow_cloudmarker import records as rec
from airflow_cloudmarker.config import PluginConfig

log = logging.getLogger("airflow_cloudmarker.tasks")


def _runtime() -> tuple[Any, str]:
    """The running task instance and this run's audit version."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    dag_run = context["dag_run"]
    when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None) or dag_run.start_date
    return context["ti"], rec.audit_version(when)


def _construct(plugin: PluginConfig) -> tuple[Any, str]:
    cls = plugin_loader.load_class(plugin.class_path)
    return plugin_loader.instantiate(cls, plugin.params), f"{cls.__module__}.{cls.__qualname__}"


def list_shards(plugin: PluginConfig) -> list:
    """Ask a sharded cloud plugin how to split its work (for example, one item per subscription)."""
    instance, class_name = _construct(plugin)
    shards = list(instance.shards())
    log.info("%s (%s): %d shards to fetch", plugin.key, class_name, len(shards))
    return shards


def fetch(audit_key: str, plugin: PluginConfig, batch_size: int, shard: Any = None, sharded: bool = False) -> dict:
    """Read records from a cloud plugin, stamp them and push them as batches."""
    ti, version = _runtime()
    instance, class_name = _construct(plugin)
    fields = rec.origin_stamp(audit_key, version, plugin.key, class_name, "cloud")
    writer = batches.BatchWriter(ti, batch_size)
    started = time.monotonic()
    source = instance.read(shard) if sharded else instance.read()
    for record in source:
        writer.add(rec.stamp(record, fields))
    instance.done()
    manifest = writer.manifest(kind="cloud", plugin_key=plugin.key)
    log.info(
        "%s%s: read %d records in %d batches in %.1f s",
        plugin.key,
        f" shard {shard!r}" if sharded else "",
        manifest["records"],
        manifest["batches"],
        time.monotonic() - started,
    )
    return manifest


def _records_from(ti: Any, upstream_task_ids: Sequence[str]) -> tuple[list[dict], Iterator[list[dict]]]:
    manifests = batches.upstream_manifests(ti, upstream_task_ids)
    return manifests, batches.read_batches(ti, manifests)


def check(audit_key: str, plugin: PluginConfig, fetch_task_ids: Sequence[str], batch_size: int) -> dict:
    """Evaluate every cloud record with an event plugin and push the events as batches."""
    ti, version = _runtime()
    instance, class_name = _construct(plugin)
    fields = rec.origin_stamp(audit_key, version, plugin.key, class_name, "event")
    writer = batches.BatchWriter(ti, batch_size)
    manifests, stream = _records_from(ti, fetch_task_ids)
    seen = 0
    for batch in stream:
        for record in batch:
            seen += 1
            for event in instance.eval(record):
                writer.add(rec.stamp(event, fields))
    instance.done()
    manifest = writer.manifest(kind="event", plugin_key=plugin.key, checked=seen)
    log.info(
        "%s: checked %d records from %d fetch outputs, emitted %d events in %d batches",
        plugin.key,
        seen,
        len(manifests),
        manifest["records"],
        manifest["batches"],
    )
    return manifest


def deliver(audit_key: str, plugin: PluginConfig, upstream_task_ids: Sequence[str], target_type: str) -> dict:
    """Hand every upstream record to a store (cloud records) or alert (events) plugin.

    ``done()`` is called only when every record was written: a store that fails half-way
    does not commit a partial result (FileStore keeps the previous complete file).
    """
    ti, _ = _runtime()
    instance, class_name = _construct(plugin)
    fields = rec.target_stamp(audit_key, plugin.key, class_name, target_type)
    manifests, stream = _records_from(ti, upstream_task_ids)
    written = 0
    batch_count = 0
    started = time.monotonic()
    for batch in stream:
        batch_count += 1
        for record in batch:
            instance.write(rec.stamp(record, fields))
            written += 1
    instance.done()
    log.info(
        "%s: wrote %d records from %d batches of %d upstream outputs in %.1f s",
        plugin.key,
        written,
        batch_count,
        len(manifests),
        time.monotonic() - started,
    )
    return {"task_id": ti.task_id, "kind": target_type, "plugin_key": plugin.key, "written": written}


def fail_if_any_failed(failed_hint: str) -> None:
    """Body of the watcher task: it runs only when an upstream task failed, and fails the run."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(f"audit {failed_hint}: at least one plugin task failed; see the failed tasks' logs")

"""What each task of an audit DAG does: run one plugin over record batches.

The functions here are the bodies of the tasks that ``factory`` wires together. They construct
the plugin at run time (never at parse time: no network in the DAG processor), stream record
batches in and out through ``batches``, stamp ``com`` and log what happened in numbers.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import threading
import time
import zoneinfo
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import batches, contract, findings, util
from airflow_cloudmarker import plugins as plugin_loader
from airflow_cloudmarker import records as rec
from airflow_cloudmarker.config import PluginConfig

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from airflow_cloudmarker.config import MuteRule

log = logging.getLogger("airflow_cloudmarker.tasks")


def _runtime() -> tuple[Any, str]:
    """The running task instance and this run's audit version."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    dag_run = context["dag_run"]
    when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None) or dag_run.start_date
    return context["ti"], rec.audit_version(when)


#: Set by ``cloudmarker -n`` on Ctrl-C: every task that starts afterwards fails at once, so the
#: interrupted run stops instead of running its remaining tasks (Airflow's task runner catches
#: the KeyboardInterrupt of the task that was running and would go on with the next ones).
STOP_REQUESTED = threading.Event()


def _reported(body: Callable[..., Any]) -> Callable[..., Any]:
    """Log a failing task's cause in one line before Airflow logs the traceback.

    The line names the task, the plugin key and class (or the audit, for the findings task), and
    the error, so the cause of a failed audit reads at a glance in the console and the task log.
    """

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> Any:
        if STOP_REQUESTED.is_set():
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("cloudmarker -n was interrupted (Ctrl-C); task not started")
        try:
            with _long_lived_objects_frozen():
                return body(*args, **kwargs)
        except Exception as exc:
            plugin = next((a for a in args if isinstance(a, PluginConfig)), None)
            if plugin is None:
                subject = f"of audit {args[0] if args else '?'}"
            else:
                subject = f"of plugin {plugin.key} ({plugin.class_path})"
            log.error("%s %s failed: %s", _TASK_WORDS.get(body.__name__, body.__name__), subject, _cause(exc))
            mark_reported(exc)
            raise

    return run


@contextlib.contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector off the objects that exist before the task body runs.

    A task process holds Airflow's millions of long-lived objects (modules, classes, the ORM), and
    decoding a batch creates hundreds of thousands of dicts, which triggers collections that walk
    all of them: half the time of decoding a batch went to the collector. Records are acyclic and
    freed by reference counting; ``gc.freeze()`` moves what exists now out of the collector's
    reach for the task's duration (cycles among new objects are still collected).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: How a failing task body is named in its one-line cause, when not by its own name.
_TASK_WORDS = {"fetch_shards": "fetch", "track_findings": "findings"}

#: Set on an exception whose cause was logged in one line: ``cloudmarker -n`` keeps its traceback off the console.
REPORTED_ATTRIBUTE = "cloudmarker_reported"


def mark_reported(exc: BaseException) -> None:
    """Flag ``exc`` as already logged in one line, so ``cloudmarker -n`` does not print its traceback too."""
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, REPORTED_ATTRIBUTE, True)


def _construct(plugin: PluginConfig) -> tuple[Any, str]:
    cls = plugin_loader.load_class(plugin.class_path)
    return plugin_loader.instantiate(cls, plugin.params), f"{cls.__module__}.{cls.__qualname__}"


@_reported
def list_shards(plugin: PluginConfig, max_groups: int = contract.DEFAULT_MAX_SHARD_GROUPS) -> list[list]:
    """Ask a sharded cloud plugin how to split its work, packed into at most ``max_groups`` groups.

    Each group becomes one mapped fetch task (see ``fetch_shards``): a tenant of 2,000 subscriptions
    is 32 task instances, not 2,000.
    """
    instance, class_name = _construct(plugin)
    shards = list(instance.shards())
    groups = contract.shard_groups(shards, max_groups)
    log.info(
        "%s (%s): %d shards to fetch in %d tasks (at most %d each)",
        plugin.key,
        class_name,
        len(shards),
        len(groups),
        max((len(g) for g in groups), default=0),
    )
    return groups


class _CappedLog:
    """Log a task's problems one warning line each, the first ``limit`` in full, then how many more.

    A plugin that yields a million bad records must not write a million log lines.
    """

    def __init__(self, prefix: str, limit: int = 10):
        self.prefix = prefix
        self.limit = limit
        self.count = 0

    def full(self) -> bool:
        """True when the next problem is only counted, not logged."""
        return self.count >= self.limit

    def add(self, message: str, *args: Any) -> None:
        self.count += 1
        if self.count <= self.limit:
            log.warning("%s: " + message, self.prefix, *args)

    def close(self, what: str) -> None:
        if self.count > self.limit:
            log.warning(
                "%s: %d more %s not logged one by one (%d in all)",
                self.prefix,
                self.count - self.limit,
                what,
                self.count,
            )


def _log_repairs(prefix: str, writer: batches.BatchWriter, kind: str, describe: Callable[[Any], str]) -> None:
    """One warning per task for the records ``writer`` repaired: how many, and the first one's field."""
    if not writer.first_repair:
        return
    where, field, fields = writer.first_repair
    log.warning(
        "%s: repaired %d %s holding values JSON cannot carry (first: %s, field %s%s)",
        prefix,
        writer.repaired,
        kind if writer.repaired == 1 else kind + "s",
        describe(where),
        field,
        f"; {fields} fields repaired in it" if fields > 1 else "",
    )


def _reference(record: dict) -> str:
    """``com.reference`` of a record for a log line, shortened."""
    text = repr((record.get("com") or {}).get("reference"))
    return text if len(text) <= 200 else text[:200] + "..."


@_reported
def fetch(audit_key: str, plugin: PluginConfig, limits: batches.BatchLimits) -> dict:
    """Read records from a cloud plugin, stamp them and push them as batches.

    One bad record never loses the cloud: values JSON cannot carry are repaired (see
    ``records.repair``) and a record that is not a dict is skipped, each with a warning.
    """
    ti, version = _runtime()
    instance, class_name = _construct(plugin)
    sink = _RecordSink(ti, limits, rec.origin_stamp(audit_key, version, plugin.key, class_name, "cloud"), plugin.key)
    started = time.monotonic()
    try:
        sink.take(instance.read())
    finally:  # also when the cloud fails half-way: what was repaired or skipped so far is told
        sink.close()
    counts = contract.api_counts(instance)
    instance.done()
    manifest = sink.writer.manifest(kind="cloud", plugin_key=plugin.key, skipped=sink.skipped.count, api_counts=counts)
    _log_fetched(plugin.key, manifest, started)
    return manifest


class ShardsFailed(Exception):
    """Some shards of a fetch task failed; the records of the others were delivered."""


@_reported
def fetch_shards(
    audit_key: str, plugin: PluginConfig, limits: batches.BatchLimits, group: Sequence[Any], parallel: int = 8
) -> dict:
    """Read one group of a sharded cloud's shards, ``parallel`` at once, each on a fresh plugin instance.

    A shard whose ``read()`` raises is logged by its id and left out; the other shards' records
    are pushed (with what the failed shard yielded before it failed: those records were read
    correctly). The task then fails after pushing its manifest, whose ``failed_shards`` tells the
    findings task to keep the cloud's findings open. Airflow's retry reads the whole group again
    (a retry clears the try's output, so it cannot keep the shards that had succeeded).
    """
    ti, version = _runtime()
    cls = plugin_loader.load_class(plugin.class_path)
    class_name = f"{cls.__module__}.{cls.__qualname__}"
    sink = _RecordSink(ti, limits, rec.origin_stamp(audit_key, version, plugin.key, class_name, "cloud"), plugin.key)
    failures: dict[str, str] = {}
    counts: collections.Counter[str] = collections.Counter()
    counting = threading.Lock()
    started = time.monotonic()

    def reader(shard: Any) -> Callable[[], Iterator[dict]]:
        def run() -> Iterator[dict]:
            try:
                instance = plugin_loader.instantiate(cls, plugin.params)
                yield from instance.read(shard)
                shard_counts = contract.api_counts(instance)
                with counting:
                    counts.update(shard_counts)
                instance.done()
            except Exception as exc:  # this shard only: the group goes on
                name = _shard_name(shard)
                failures[name] = _cause(exc)
                log.warning("%s: shard %s failed: %s", plugin.key, name, failures[name])

        return run

    try:
        sink.take(util.stream_parallel([reader(shard) for shard in group], parallel))
    finally:
        sink.close()
    manifest = sink.writer.manifest(
        kind="cloud",
        plugin_key=plugin.key,
        skipped=sink.skipped.count,
        shards=len(group),
        failed_shards=sorted(failures),
        api_counts=dict(counts),
    )
    _log_fetched(f"{plugin.key} ({len(group)} shard{'s' if len(group) != 1 else ''})", manifest, started)
    if failures:
        batches.push_manifest(ti, manifest)  # the other shards' records still reach checks and stores
        first = next(iter(sorted(failures)))
        raise ShardsFailed(
            f"{len(failures)} of {len(group)} shards failed ({_listing(sorted(failures))}; first: {first}: "
            f"{failures[first]}); the records of the other shards were delivered and this cloud's findings "
            f"carried over"
        )
    return manifest


def _shard_name(shard: Any) -> str:
    """A shard as a log line names it (a subscription id as it is; other values as their repr)."""
    text = shard if isinstance(shard, str) else repr(shard)
    return text if len(text) <= 200 else text[:200] + "..."


def _listing(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _log_fetched(prefix: str, manifest: dict, started: float) -> None:
    """The fetch task's summary line, with the plugin's API counts (calls, throttled calls) when it keeps them."""
    counts = manifest.get("api_counts") or {}
    log.info(
        "%s: read %d records in %d batches in %.1f s%s",
        prefix,
        manifest["records"],
        manifest["batches"],
        time.monotonic() - started,
        "".join(f"; {value} {name.replace('_', ' ')}" for name, value in counts.items()),
    )


class _RecordSink:
    """A fetch task's records on their way out: shape-checked, stamped, encoded into batches.

    Used from the task's own thread only (shards read in threads hand their records over through
    ``util.stream_parallel``), so the writer needs no lock.
    """

    def __init__(self, ti: Any, limits: batches.BatchLimits, fields: dict, prefix: str):
        self.writer = batches.BatchWriter(ti, limits, stamp=fields)  # each batch carries the stamp once
        self.fields = fields
        self.prefix = prefix
        self.skipped = _CappedLog(prefix)
        self.count = 0

    def take(self, source: Iterable[Any]) -> None:
        """Queue every record of ``source`` (the batch stamps them); a record that is not a record is skipped."""
        writer, skipped, index = self.writer, self.skipped, self.count
        shape_problem, add = rec.shape_problem, writer.add
        try:
            for record in source:
                problem = shape_problem(record)
                if problem is not None:
                    skipped.add("skipped record %d: it %s", index, problem)
                else:
                    add(record, index)
                index += 1
        finally:
            self.count = index

    def close(self) -> None:
        """Log the repaired and skipped records in one warning each."""
        _log_repairs(self.prefix, self.writer, "record", lambda index: f"record {index}")
        self.skipped.close("skipped records")


_NO_CLOUD = object()


class CheckFailed(Exception):
    """An event plugin raised on some records; the events of the others were delivered."""


def _events_of(instance: Any, record: dict) -> list:
    """All events ``eval(record)`` yields, or none: a generator raising half-way drops its partial output.

    A record's events are all or nothing, so a record that failed is skipped as a whole, never
    half-checked; an iterator that is not a finished generator is closed (its resources freed now).
    """
    events = instance.eval(record)
    if events is None:
        return []
    try:
        return list(events)
    finally:
        close = getattr(events, "close", None)
        if callable(close):
            close()


@_reported
def check(audit_key: str, plugin: PluginConfig, fetch_task_ids: Sequence[str], limits: batches.BatchLimits) -> dict:
    """Evaluate every cloud record with an event plugin and push the events as batches.

    A record on which ``eval()`` raises is skipped and logged (its index and ``com.reference``);
    the other records' events are pushed. The task then fails, so the run says failed, unless
    the plugin's config says ``on_error: skip``; either way its manifest carries ``errors`` and
    the findings task carries the check's findings over instead of resolving them.
    """
    ti, version = _runtime()
    instance, class_name = _construct(plugin)
    fields = rec.origin_stamp(audit_key, version, plugin.key, class_name, "event")
    writer = batches.BatchWriter(ti, limits, stamp=fields)
    failed = _CappedLog(plugin.key)
    skipped_events = _CappedLog(plugin.key)
    first_failure = ""
    manifests = batches.upstream_manifests(ti, fetch_task_ids)
    seen = 0
    for batch, stamp in batches.read_unstamped(ti, manifests):
        # Every record of a stamped batch comes from the cloud its stamp names: one lookup a batch.
        per_record = not stamp or "origin_key" not in stamp
        if stamp:
            batches.stamp_all(batch, stamp)
            cloud_key = stamp.get("origin_key")
            if not per_record and cloud_key != writer.stamp.get("cloud_key", _NO_CLOUD):
                writer.set_stamp({**fields, "cloud_key": cloud_key})  # which cloud's data found it
        for record in batch:
            index = seen
            seen += 1
            if per_record:
                cloud_key = (record.get("com") or {}).get("origin_key")
                if cloud_key != writer.stamp.get("cloud_key", _NO_CLOUD):
                    writer.set_stamp({**fields, "cloud_key": cloud_key})
            try:
                events = _events_of(instance, record)
            except Exception as exc:
                cause = "" if failed.full() else _cause(exc)  # not logged: spare the traceback walk
                first_failure = first_failure or f"record {index}, reference {_reference(record)}: {cause}"
                failed.add(
                    "eval() raised on record %d (reference %s, cloud %s); skipped: %s",
                    index,
                    _reference(record),
                    cloud_key,
                    cause,
                )
                continue
            for event in events:
                problem = rec.shape_problem(event)
                if problem is not None:
                    skipped_events.add(
                        "skipped an event of record %d (reference %s): it %s", index, _reference(record), problem
                    )
                    continue
                writer.add(event, (index, record))
    failed.close("records on which eval() raised")
    skipped_events.close("skipped events")
    _log_repairs(plugin.key, writer, "event", lambda w: f"an event of record {w[0]} (reference {_reference(w[1])})")
    instance.done()
    manifest = writer.manifest(
        kind="event",
        plugin_key=plugin.key,
        checked=seen,
        skipped=failed.count + skipped_events.count,
        errors=failed.count,
    )
    log.info(
        "%s: checked %d records from %d fetch outputs, emitted %d events in %d batches",
        plugin.key,
        seen,
        len(manifests),
        manifest["records"],
        manifest["batches"],
    )
    if failed.count and plugin.on_error != "skip":
        batches.push_manifest(ti, manifest)  # the good records' events still reach findings and alerts
        raise CheckFailed(
            f"eval() raised on {failed.count} of {seen} records (first: {first_failure}); the events of the "
            f"other records were delivered and this check's findings carried over; fix the plugin, or set "
            f"on_error: skip beside plugin: in its config to skip such records without failing the run"
        )
    return manifest


def _abort(plugin: PluginConfig, instance: Any) -> None:
    """Call the plugin's optional ``abort()``; its own failure is logged, never hiding the task's error."""
    abort = contract.abort_method(instance)
    if abort is not None:
        try:
            abort()
        except Exception as exc:
            log.warning("abort() of plugin %s failed: %s: %s", plugin.key, type(exc).__name__, exc)


def _cause(exc: BaseException) -> str:
    """``Type: message (at file:line)`` of an exception, where the plugin raised it, in one line."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{type(exc).__name__}: {message}{where}"


@_reported
def deliver(
    audit_key: str,
    plugin: PluginConfig,
    upstream_task_ids: Sequence[str],
    target_type: str,
    only_changes: bool = False,
) -> dict:
    """Hand every upstream record to a store (cloud records) or alert (events) plugin.

    ``done()`` is called only when every record was written: a store that fails half-way
    does not commit a partial result (FileStore keeps the previous complete file). If the task
    fails or is interrupted first, the plugin's optional ``abort()`` is called instead.
    With ``only_changes`` (``alert_on: changes``) an alert plugin gets only new and resolved
    findings, unless it is a store (a store keeps every event).
    """
    ti, _ = _runtime()
    instance, class_name = _construct(plugin)
    fields = rec.target_stamp(audit_key, plugin.key, class_name, target_type)
    manifests = batches.upstream_manifests(ti, upstream_task_ids)
    stream = batches.read_batches(ti, manifests, extra=fields)  # stamped as they are decoded
    keeps_all = target_type != "alert" or contract.keeps_every_event(instance)
    wanted = findings.STATUSES_OF_CHANGE if only_changes and not keeps_all else None
    written = batch_count = 0
    skipped = {"unchanged": 0, "muted": 0}
    started = time.monotonic()
    write, write_batch = instance.write, contract.write_batch_method(instance)
    try:
        for batch in stream:
            batch_count += 1
            if not keeps_all:
                batch = _passed_on(batch, wanted, skipped)  # noqa: PLW2901 - the part of the batch it gets
            if write_batch is not None:
                write_batch(batch)
            else:
                for record in batch:
                    write(record)
            written += len(batch)
        instance.done()
    except BaseException:  # failed or interrupted: a plugin's optional abort() drops its partial output
        _abort(plugin, instance)
        raise
    log.info(
        "%s: wrote %d records from %d batches of %d upstream outputs in %.1f s%s",
        plugin.key,
        written,
        batch_count,
        len(manifests),
        time.monotonic() - started,
        _held_back_note(skipped),
    )
    return {"task_id": ti.task_id, "kind": target_type, "plugin_key": plugin.key, "written": written}


def _passed_on(batch: list[dict], wanted: Sequence[str] | None, skipped: dict[str, int]) -> list[dict]:
    """The records of ``batch`` an alert that is not a store gets; the others counted in ``skipped`` by reason."""
    kept = []
    for record in batch:
        held = _held_back(record, wanted)
        if held:
            skipped[held] += 1
        else:
            kept.append(record)
    return kept


def _held_back(record: dict, wanted: Sequence[str] | None) -> str | None:
    """Why an alert that is not a store does not get ``record``: ``muted``, ``unchanged``, or None (it does)."""
    com = record.get("com") or {}
    if com.get("muted") is True:
        return "muted"
    if wanted is not None and com.get("status") not in wanted:
        return "unchanged"
    return None


def _held_back_note(skipped: dict[str, int]) -> str:
    """The end of deliver's log line: how many findings an alert did not get, and why."""
    notes = []
    if skipped["unchanged"]:
        notes.append(f"{skipped['unchanged']} unchanged findings not alerted: alert_on is changes")
    if skipped["muted"]:
        notes.append(f"{skipped['muted']} muted findings not alerted: a mutelist rule matched them")
    return f" ({'; '.join(notes)})" if notes else ""


def _mutelist(audit_key: str, rules: Sequence[MuteRule], run_time: str, tz_name: str | None) -> findings.Mutelist:
    """This run's compiled mutelist; one warning per rule that expired (it mutes nothing now).

    A rule's ``expires`` is its last day in the config's ``timezone`` (else the machine's), on the
    day the run is for.
    """
    when = dt.datetime.fromisoformat(run_time)
    today = (when.astimezone(zoneinfo.ZoneInfo(tz_name)) if tz_name else when.astimezone()).date()
    mutes = findings.Mutelist(rules, today)
    for rule in mutes.expired:
        log.warning(
            "audit %s: %s expired on %s and mutes nothing now; extend its expires or remove it (%s)",
            audit_key,
            rule.label(),
            rule.expires,
            rule.source,
        )
    return mutes


@_reported
def track_findings(
    audit_key: str,
    clouds: Sequence[tuple[str, str, str | None]],
    event_task_ids: Sequence[str],
    limits: batches.BatchLimits,
    mutelist: Sequence[MuteRule] = (),
    timezone: str | None = None,
) -> dict:
    """Give every event its finding id, severity and status, and emit resolved events.

    ``clouds`` lists (cloud key, fetch task id, shards task id or None): a cloud whose fetch
    (or any of its shards) did not complete keeps its findings open, unresolved. ``mutelist``
    holds the audit's rules: the findings they match are marked muted (``timezone`` says which
    day it is for their ``expires``).
    """
    from airflow.sdk import get_current_context

    ti, version = _runtime()
    dag_run = get_current_context()["dag_run"]
    run_time = (getattr(dag_run, "run_after", None) or dag_run.start_date).astimezone(dt.UTC).isoformat()
    fetch_manifests = batches.upstream_manifests(ti, [fetch_id for _, fetch_id, _ in clouds])
    event_manifests = batches.upstream_manifests(ti, event_task_ids)
    scope = findings.Scope()
    failed_shards: list[str] = []
    for cloud_key, fetch_id, shards_id in clouds:
        mine = [m for m in fetch_manifests if m["task_id"] == fetch_id]
        failed_shards += [f"{cloud_key}:{s}" for m in mine for s in m.get("failed_shards") or ()]
        done = sum(1 for m in mine if not m.get("failed_shards"))
        expected = 1
        if shards_id:
            groups = ti.xcom_pull(task_ids=shards_id, key="return_value")
            expected = len(groups) if isinstance(groups, list) else -1
        if done != expected:
            scope.failed_clouds.add(cloud_key)
    if failed_shards:
        log.warning("findings of %s: shards that did not complete: %s", audit_key, _listing(failed_shards))
    # A check that skipped records (eval() raised) could not see all its findings: carry them over.
    completed_checks = {m["task_id"] for m in event_manifests if not m.get("errors")}
    scope.failed_events = {tid.removeprefix("check_") for tid in event_task_ids if tid not in completed_checks}

    store = findings.StateStore(findings.state_base_url(), audit_key)
    run_fields = {"audit_key": audit_key, "audit_version": version}
    writer = batches.BatchWriter(ti, limits, stamp=run_fields)

    def events() -> Iterator[dict]:
        """The checks' events, passed on with their batch's stamp: only the two keys findings reads are set."""
        for batch, stamp in batches.read_unstamped(ti, event_manifests):
            stamp = stamp or {}
            writer.set_stamp({**stamp, **run_fields})  # the events before went out with the stamp before
            keys = {name: stamp[name] for name in ("origin_key", "cloud_key") if name in stamp}
            if keys:
                batches.stamp_all(batch, keys)
            yield from batch
        writer.set_stamp(run_fields)  # the resolved events

    emit = writer.add

    mutes = _mutelist(audit_key, mutelist, run_time, timezone)
    outcome = findings.track(store, dag_run.run_id, run_time, events(), scope, emit, mutes, writer.add_encoded)
    manifest = writer.manifest(
        kind="findings",
        new=outcome.new,
        open=outcome.open,
        resolved=outcome.resolved,
        muted=outcome.muted,
        expired_rules=[f"{rule.label()} expired on {rule.expires}" for rule in mutes.expired],
    )
    log.info(
        "findings of %s: %d new, %d open, %d resolved (%d of them muted), %d carried over "
        "(incomplete: clouds %s, checks %s); state %s",
        audit_key,
        outcome.new,
        outcome.open,
        outcome.resolved,
        sum(outcome.muted.values()),
        outcome.carried,
        sorted(scope.failed_clouds) or "none",
        sorted(scope.failed_events) or "none",
        store.location,
    )
    return manifest


def fail_if_any_failed(failed_hint: str) -> None:
    """Body of the watcher task: it runs only when an upstream task failed, and fails the run."""
    from airflow.sdk.exceptions import AirflowFailException

    exc = AirflowFailException(f"audit {failed_hint}: at least one plugin task failed; see the failed tasks' logs")
    mark_reported(exc)  # the failed tasks said why; this task only fails the run
    raise exc

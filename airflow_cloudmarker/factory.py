"""Config -> DAGs: one DAG per audit, one task per plugin, wired as the config reads.

Shape of an audit DAG (task ids name the plugin keys)::

    fetch_<cloud> ──┬──> check_<event> ──> findings ──> alert_<alert>
    (or shards_<cloud> -> fetch_<cloud>[mapped, one per group of shards])
                    └──> store_<store>
    every task ──> audit_failed   (runs only when a task failed, and fails the run)

``findings`` gives each event its finding id, severity and new/open status and adds resolved
events (see ``findings``); an audit without events has no findings task.

Checks and stores run when all fetches are done (``all_done``), so one failing cloud never
starves the other plugins of the data the successful fetches produced; ``audit_failed`` keeps
the run's final state honest, because an ``all_done`` leaf would otherwise make it succeed.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import batches, contract, results, tasks
from airflow_cloudmarker import plugins as plugin_loader

if TYPE_CHECKING:
    from airflow.sdk import DAG, Context
    from airflow.timetables.base import Timetable

    from airflow_cloudmarker.config import AuditConfig, Config, PluginConfig

log = logging.getLogger(__name__)

TAGS = ["cloudmarker"]
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_SECONDS = 60
FINDINGS_TASK_ID = "findings"
#: The first task, there only to carry the begin-of-audit callback (Airflow has no DAG-level start callback).
BEGIN_TASK_ID = "audit_begin"
#: Callables with the signature (config, audit) -> dict of DAG keyword arguments (callbacks).
DagKwargsHook = Callable[["Config", "AuditConfig"], dict[str, Any]]
#: Callables with the signature (config, audit) -> the begin task's ``on_execute_callback``, or None for no begin task.
BeginHook = Callable[["Config", "AuditConfig"], "Callable[[Context], None] | None"]


def _setting(name: str, default: int) -> int:
    """An integer from Airflow's ``[cloudmarker]`` config section (env: AIRFLOW__CLOUDMARKER__<NAME>)."""
    from airflow.configuration import conf

    try:
        return conf.getint("cloudmarker", name, fallback=default)
    except Exception:  # a malformed value must not make every DAG disappear
        log.warning("[cloudmarker] %s is not an integer; using %d", name, default)
        return default


def local_timezone_name() -> str:
    """The machine's time zone (the tutorial's schedule is in local time)."""
    import pendulum

    return pendulum.local_timezone().name


def build_timetable(config: Config) -> Timetable | None:
    """``schedule: "HH:MM"`` -> every day at that local (or ``timezone:``) time; None when unset."""
    if config.schedule is None:
        return None
    from airflow.timetables.trigger import CronTriggerTimetable

    hour, minute = config.schedule
    return CronTriggerTimetable(f"{minute} {hour} * * *", timezone=config.timezone or local_timezone_name())


def _named(name: str, body: Callable[..., Any]) -> Callable[..., Any]:
    body.__name__ = body.__qualname__ = name
    return body


def _task(task_id: str, body: Callable[..., Any], expand: dict[str, Any] | None = None, **options: Any) -> Any:
    """Add the TaskFlow task ``task_id`` running ``body`` to the open DAG: called once, or mapped over ``expand``.

    ``body`` is renamed after the task (Airflow shows a callable's name in logs and the UI), and
    takes no arguments unless mapped: its inputs are bound in its closure when the DAG is built.
    """
    from airflow.sdk import task

    decorated = task(task_id=task_id, **options)(_named(task_id, body))
    return decorated.expand(**expand) if expand is not None else decorated()


@dataclass
class _Wiring:
    """The tasks of one audit DAG by layer, and the task ids the later layers read their inputs from."""

    audit_key: str
    limits: batches.BatchLimits
    fetches: list[Any] = field(default_factory=list)
    fetch_ids: list[str] = field(default_factory=list)
    #: (cloud plugin key, fetch task id, shards task id or None) of each cloud, for ``findings``.
    cloud_specs: list[tuple[str, str, str | None]] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    check_ids: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)

    def every_task(self) -> list[Any]:
        return [*self.fetches, *self.checks, *self.findings, *self.deliveries]


def build_dag(
    config: Config,
    audit: AuditConfig,
    extra_dag_kwargs: dict[str, Any] | None = None,
    fileloc: str | None = None,
    begin_callback: Callable[[Context], None] | None = None,
) -> DAG:
    """Build the DAG of one validated audit.

    ``fileloc`` is the DAG file that asked for it: Airflow would otherwise record this module
    as the DAG's file, and workers re-parse a DAG from its file to run its tasks. With
    ``begin_callback`` a first task, ``audit_begin``, runs it (the begin-of-audit email).
    """
    dag = _new_dag(config, audit, extra_dag_kwargs, fileloc)
    wiring = _Wiring(audit.key, _batch_limits())
    with dag:
        for key in audit.clouds:
            _add_fetch(wiring, key, config.plugins[key])
        for key in audit.events:
            _add_check(wiring, key, config.plugins[key])
        if wiring.checks:  # events become findings: ids, severity, new/open/resolved across runs
            _add_findings(wiring, config)
        _add_deliveries(wiring, config, audit)
        if begin_callback is not None:  # the begin-of-audit email needs a first task to hang its callback on
            _add_begin(dag, begin_callback)
        _add_watcher(wiring)
    return dag


def _batch_limits() -> batches.BatchLimits:
    return batches.BatchLimits(
        records=_setting("batch_size", batches.DEFAULT_BATCH_RECORDS),
        bytes=_setting("batch_bytes", batches.DEFAULT_BATCH_BYTES),
    )


def _new_dag(config: Config, audit: AuditConfig, extra_dag_kwargs: dict[str, Any] | None, fileloc: str | None) -> DAG:
    """The audit's empty DAG: schedule (when ``run`` lists it), one run at a time, retries, docs and ``fileloc``."""
    from airflow.sdk import DAG

    dag = DAG(
        dag_id=audit.key,
        schedule=build_timetable(config) if audit.key in config.run else None,
        # No start_date: a new deployment waits for the next HH:MM (a past start date with
        # catchup=False would run the most recent past tick at once).
        catchup=False,
        max_active_runs=1,
        tags=TAGS,
        description=f"Cloudmarker audit {audit.key}: clouds {', '.join(audit.clouds)}",
        doc_md=_doc(config, audit),
        default_args={
            "retries": _setting("task_retries", DEFAULT_RETRIES),
            "retry_delay": dt.timedelta(seconds=_setting("retry_delay_seconds", DEFAULT_RETRY_DELAY_SECONDS)),
        },
        **(extra_dag_kwargs or {}),
    )
    if fileloc:
        dag.fileloc = fileloc
    return dag


def shard_group_limit(plugin: PluginConfig, cls: type) -> int:
    """How many mapped fetch tasks a sharded cloud's shards are packed into, at most.

    The plugin's ``max_shard_groups`` config key, else its class attribute, else ``[cloudmarker]
    max_shard_groups`` (default 32); never more than ``[core] max_map_length``, past which
    Airflow refuses to expand a mapped task.
    """
    from airflow.configuration import conf

    wanted = plugin.max_shard_groups or contract.max_shard_groups(cls)
    if wanted is None:
        wanted = _setting("max_shard_groups", contract.DEFAULT_MAX_SHARD_GROUPS)
    return max(1, min(wanted, conf.getint("core", "max_map_length", fallback=1024)))


def _add_fetch(wiring: _Wiring, key: str, plugin: PluginConfig) -> None:
    """``fetch_<key>``; a sharded cloud gets ``shards_<key>`` first and one mapped fetch per group of shards."""
    cls = plugin_loader.load_class(plugin.class_path)
    audit_key, limits, task_id = wiring.audit_key, wiring.limits, f"fetch_{key}"
    shards_id = f"shards_{key}" if contract.is_sharded(cls) else None
    if shards_id:
        groups, parallel = shard_group_limit(plugin, cls), contract.max_parallel_shards(cls)
        shards = _task(shards_id, lambda: tasks.list_shards(plugin, groups))
        fetched = _task(
            task_id,
            lambda group: tasks.fetch_shards(audit_key, plugin, limits, group, parallel),
            expand={"group": shards},
            show_return_value_in_logs=False,
            max_active_tis_per_dagrun=parallel,
        )
    else:
        fetched = _task(task_id, lambda: tasks.fetch(audit_key, plugin, limits), show_return_value_in_logs=False)
    wiring.fetches.append(fetched)
    wiring.fetch_ids.append(task_id)
    wiring.cloud_specs.append((key, task_id, shards_id))


def _add_check(wiring: _Wiring, key: str, plugin: PluginConfig) -> None:
    """``check_<key>``, after every fetch (``all_done``: one failing cloud does not starve it of the others)."""
    from airflow.sdk import TriggerRule

    audit_key, limits, fetch_ids, task_id = wiring.audit_key, wiring.limits, wiring.fetch_ids, f"check_{key}"
    checked = _task(
        task_id,
        lambda: tasks.check(audit_key, plugin, fetch_ids, limits),
        trigger_rule=TriggerRule.ALL_DONE,
        show_return_value_in_logs=False,
    )
    wiring.fetches >> checked
    wiring.checks.append(checked)
    wiring.check_ids.append(task_id)


def _add_findings(wiring: _Wiring, config: Config) -> None:
    """``findings``, after every check: the events' finding ids, severity, new/open/resolved status and mutes."""
    from airflow.sdk import TriggerRule

    audit_key, limits = wiring.audit_key, wiring.limits
    cloud_specs, check_ids = tuple(wiring.cloud_specs), tuple(wiring.check_ids)
    mutelist, timezone = config.mutelist_for(audit_key), config.timezone
    tracked = _task(
        FINDINGS_TASK_ID,
        lambda: tasks.track_findings(audit_key, cloud_specs, check_ids, limits, mutelist, timezone),
        trigger_rule=TriggerRule.ALL_DONE,
        show_return_value_in_logs=False,
    )
    wiring.checks >> tracked
    wiring.findings.append(tracked)


def _add_deliveries(wiring: _Wiring, config: Config, audit: AuditConfig) -> None:
    """``store_<key>`` after the fetches; ``alert_<key>`` after ``findings`` (after the fetches without events)."""
    alert_upstream_ids = [FINDINGS_TASK_ID] if wiring.findings else []
    for kind, keys, upstream, upstream_ids in (
        ("store", audit.stores, wiring.fetches, wiring.fetch_ids),
        ("alert", audit.alerts, wiring.findings or wiring.fetches, alert_upstream_ids),
    ):
        only_changes = kind == "alert" and audit.alert_on == "changes"
        for key in keys:
            delivered = _deliver_task(
                wiring.audit_key, f"{kind}_{key}", config.plugins[key], kind, upstream_ids, only_changes
            )
            upstream >> delivered
            wiring.deliveries.append(delivered)


def _deliver_task(
    audit_key: str, task_id: str, plugin: PluginConfig, kind: str, upstream_ids: list[str], only_changes: bool
) -> Any:
    from airflow.sdk import TriggerRule

    ids = tuple(upstream_ids)
    return _task(
        task_id,
        lambda: tasks.deliver(audit_key, plugin, ids, kind, only_changes=only_changes),
        trigger_rule=TriggerRule.ALL_DONE,
    )


def _add_begin(dag: DAG, begin_callback: Callable[[Context], None]) -> None:
    """``audit_begin`` before the DAG's roots, running nothing but ``begin_callback`` (no retry: one begin email)."""
    roots = list(dag.roots)
    begin = _task(BEGIN_TASK_ID, lambda: None, on_execute_callback=begin_callback, retries=0)
    begin.operator.set_downstream(roots)


def _add_watcher(wiring: _Wiring) -> None:
    """``audit_failed`` after every task: runs only when one failed, and fails the run (an ``all_done`` leaf won't)."""
    from airflow.sdk import TriggerRule

    audit_key = wiring.audit_key
    watcher = _task(
        results.WATCHER_TASK_ID,
        lambda: tasks.fail_if_any_failed(audit_key),
        trigger_rule=TriggerRule.ONE_FAILED,
        retries=0,
    )
    wiring.every_task() >> watcher


def _doc(config: Config, audit: AuditConfig) -> str:
    lines = [f"### Cloudmarker audit `{audit.key}`", ""]
    for kind in ("clouds", "events", "stores", "alerts"):
        for key in audit.plugin_keys(kind):
            lines.append(f"- {kind[:-1]} `{key}`: `{config.plugins[key].class_path}`")
    if audit.source:
        lines += ["", f"Defined in `{audit.source}`."]
    return "\n".join(lines)


def build_dags(
    config: Config,
    audit_keys: Iterable[str] | None = None,
    dag_kwargs_hook: DagKwargsHook | None = None,
    fileloc: str | None = None,
    begin_hook: BeginHook | None = None,
) -> dict[str, DAG]:
    """Build the DAGs of the valid audits (all of them, or ``audit_keys``); log and skip bad ones.

    The hooks come from the caller (``notify`` for the audit emails), so this module knows no
    notification: ``dag_kwargs_hook`` gives each DAG its callbacks, ``begin_hook`` its begin task's.
    """
    wanted = list(audit_keys) if audit_keys is not None else sorted(config.audits)
    dags: dict[str, DAG] = {}
    for key in wanted:
        if key in config.audit_errors:
            for problem in config.audit_errors[key]:
                # A warning as well as a log line: Airflow's DAG parsing shows captured warnings
                # (`airflow dags list`, the DAG processor's log), where a log line may be filtered.
                log.error("audit %s skipped: %s", key, problem)
                warnings.warn(f"cloudmarker: audit {key} skipped: {problem}", UserWarning, stacklevel=2)
            continue
        audit = config.audits[key]
        extra = dag_kwargs_hook(config, audit) if dag_kwargs_hook else None
        begin = begin_hook(config, audit) if begin_hook else None
        try:
            dags[key] = build_dag(config, audit, extra, fileloc, begin)
        except Exception as exc:  # one audit must never hide the others (a file-level import error would)
            log.exception("audit %s skipped: building its DAG failed: %s", key, exc)
    return dags

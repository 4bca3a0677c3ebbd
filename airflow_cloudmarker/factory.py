"""Config -> DAGs: one DAG per audit, one task per plugin, wired as the config reads.

Shape of an audit DAG (task ids name the plugin keys)::

    fetch_<cloud> ──┬──> check_<event> ──> findings ──> alert_<alert>
    (or shards_<cloud> -> fetch_<cloud>[mapped])
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
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import batches, contract, results, tasks
from airflow_cloudmarker import plugins as plugin_loader

if TYPE_CHECKING:
    from airflow.sdk import DAG, Context
    from airflow.timetables.base import Timetable

    from airflow_cloudmarker.config import AuditConfig, Config

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
    from airflow.sdk import DAG, TriggerRule, task

    limits = batches.BatchLimits(
        records=_setting("batch_size", batches.DEFAULT_BATCH_RECORDS),
        bytes=_setting("batch_bytes", batches.DEFAULT_BATCH_BYTES),
    )
    timetable = build_timetable(config) if audit.key in config.run else None
    dag = DAG(
        dag_id=audit.key,
        schedule=timetable,
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
    with dag:
        fetch_tasks, fetch_ids, cloud_specs = [], [], []
        for key in audit.clouds:
            plugin = config.plugins[key]
            cls = plugin_loader.load_class(plugin.class_path)
            task_id = f"fetch_{key}"
            sharded = contract.is_sharded(cls)
            if sharded:
                shards = task(task_id=f"shards_{key}")(
                    _named(f"shards_{key}", lambda plugin=plugin: tasks.list_shards(plugin))
                )()
                fetched = task(
                    task_id=task_id,
                    show_return_value_in_logs=False,
                    max_active_tis_per_dagrun=contract.max_parallel_shards(cls),
                )(
                    _named(
                        task_id,
                        lambda shard, plugin=plugin: tasks.fetch(audit.key, plugin, limits, shard, sharded=True),
                    )
                ).expand(shard=shards)
            else:
                fetched = task(task_id=task_id, show_return_value_in_logs=False)(
                    _named(task_id, lambda plugin=plugin: tasks.fetch(audit.key, plugin, limits))
                )()
            fetch_tasks.append(fetched)
            fetch_ids.append(task_id)
            cloud_specs.append((key, task_id, f"shards_{key}" if sharded else None))

        check_tasks, check_ids = [], []
        for key in audit.events:
            plugin = config.plugins[key]
            task_id = f"check_{key}"
            checked = task(task_id=task_id, trigger_rule=TriggerRule.ALL_DONE, show_return_value_in_logs=False)(
                _named(task_id, lambda plugin=plugin: tasks.check(audit.key, plugin, fetch_ids, limits))
            )()
            fetch_tasks >> checked
            check_tasks.append(checked)
            check_ids.append(task_id)

        findings_tasks = []
        if check_tasks:  # events become findings: ids, severity, new/open/resolved across runs
            tracked = task(
                task_id=FINDINGS_TASK_ID, trigger_rule=TriggerRule.ALL_DONE, show_return_value_in_logs=False
            )(
                _named(
                    FINDINGS_TASK_ID,
                    lambda: tasks.track_findings(audit.key, tuple(cloud_specs), tuple(check_ids), limits),
                )
            )()
            check_tasks >> tracked
            findings_tasks.append(tracked)

        deliver_tasks = []
        only_changes = audit.alert_on == "changes"
        for kind, keys, upstream, upstream_ids in (
            ("store", audit.stores, fetch_tasks, fetch_ids),
            ("alert", audit.alerts, findings_tasks or fetch_tasks, [FINDINGS_TASK_ID] if findings_tasks else []),
        ):
            for key in keys:
                plugin = config.plugins[key]
                task_id = f"{kind}_{key}"
                delivered = task(task_id=task_id, trigger_rule=TriggerRule.ALL_DONE)(
                    _named(
                        task_id,
                        lambda plugin=plugin, kind=kind, ids=tuple(upstream_ids): tasks.deliver(
                            audit.key, plugin, ids, kind, only_changes=kind == "alert" and only_changes
                        ),
                    )
                )()
                upstream >> delivered
                deliver_tasks.append(delivered)

        if begin_callback is not None:  # the begin-of-audit email needs a first task to hang its callback on
            roots = list(dag.roots)
            begin = task(task_id=BEGIN_TASK_ID, on_execute_callback=begin_callback, retries=0)(
                _named(BEGIN_TASK_ID, lambda: None)
            )()
            begin.operator.set_downstream(roots)

        watcher = task(task_id=results.WATCHER_TASK_ID, trigger_rule=TriggerRule.ONE_FAILED, retries=0)(
            _named(results.WATCHER_TASK_ID, lambda: tasks.fail_if_any_failed(audit.key))
        )()
        [*fetch_tasks, *check_tasks, *findings_tasks, *deliver_tasks] >> watcher
    return dag


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

"""``cloudmarker -n``: run the audits now, in-process, through Airflow's own ``dag.test()``.

Embedded defaults make a laptop run need nothing set up: an AIRFLOW_HOME of its own (unless
one is set), a SQLite metadata DB migrated on first use, XComs in a local directory through
the object-storage XCom backend, and the package's own DAG file as the DAGs folder. The DAG
file reads the same config files (passed through CLOUDMARKER_CONFIG), which ``dag.test()``
needs: it only runs DAGs it can find in a DAG bundle.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import signal
import threading
import time
import warnings
from typing import TYPE_CHECKING

from airflow_cloudmarker import environment, factory, inprocess_api, local_runs, metadb, notify, tasks
from airflow_cloudmarker.results import AuditResult, collect_run

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG

    from airflow_cloudmarker.config import Config

log = logging.getLogger("airflow_cloudmarker.runner")


def purge_run_xcoms(dag_run: DagRun) -> None:
    """Delete a finished run's XComs and their batch files in a local XCom directory.

    ``cloudmarker -n`` keeps no history to browse, and each run's batches are as large as the
    cloud: without this, every laptop run would leave its whole data set under AIRFLOW_HOME.
    (Object-storage XCom files are not removed by ``airflow db clean``.)
    """
    import shutil
    from urllib.parse import unquote, urlsplit

    from airflow import settings
    from airflow.models.xcom import XComModel

    base = os.environ.get("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", "")
    url = urlsplit(base)
    if url.scheme == "file":
        run_dir = os.path.join(unquote(url.path), dag_run.dag_id, dag_run.run_id)
        shutil.rmtree(run_dir, ignore_errors=True)
    with settings.Session() as session:
        session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).delete()
        session.commit()


def configure_logging(logger_config: dict) -> None:
    """Apply the config's ``logger`` (stdout and /tmp/cloudmarker.log by default)."""
    if not logger_config:
        return
    for handler in (logger_config.get("handlers") or {}).values():
        filename = handler.get("filename") if isinstance(handler, dict) else None
        if filename:
            directory = os.path.dirname(os.path.abspath(os.path.expanduser(filename)))
            os.makedirs(directory, exist_ok=True)
    logging.config.dictConfig(logger_config)


def run_audit(dag: DAG, owner: local_runs.RunOwner, keep_xcoms: bool) -> AuditResult:
    """One ``dag.test()`` run of an audit, owned by this process; its batches deleted unless ``keep_xcoms``.

    A Ctrl-C that lands outside a task (between tasks, in Airflow's own code) ends ``dag.test()``
    at once: the run is then failed here, so it never stays ``running``.
    """
    try:
        dag_run = dag.test(run_conf=owner.conf)
    except KeyboardInterrupt:
        dag_run = local_runs.fail_runs_of(owner, dag.dag_id)
        if dag_run is None:
            return AuditResult(audit=dag.dag_id, state="interrupted")
    result = collect_run(dag_run, 0.0)
    if tasks.STOP_REQUESTED.is_set():
        result.state = "interrupted"
    if not keep_xcoms or result.state == "interrupted":
        purge_run_xcoms(dag_run)
    return result


def keep_reported_tracebacks_off_the_console() -> None:
    """A failed task shows its one-line cause on the console, not Airflow's 40-line traceback of it.

    Applies only to exceptions the task already reported in one line (``tasks.mark_reported``);
    any other error keeps its traceback. ``AIRFLOW__LOGGING__LOGGING_LEVEL=INFO`` (or DEBUG)
    brings every traceback back, with Airflow's per-task chatter.
    """
    import sys

    import structlog

    def drop_reported_traceback(logger: object, method_name: str, event_dict: dict) -> dict:
        exc_info = event_dict.get("exc_info")
        if exc_info is True:
            exc_info = sys.exc_info()
        exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if isinstance(exc, BaseException) and getattr(exc, tasks.REPORTED_ATTRIBUTE, False):
            event_dict.pop("exc_info", None)
            event_dict["event"] = f"{event_dict.get('event')}: {type(exc).__name__} (cause logged above)"
        return event_dict

    processors = list(structlog.get_config().get("processors") or [])
    if not any(getattr(p, "__name__", "") == drop_reported_traceback.__name__ for p in processors):
        structlog.configure(processors=[drop_reported_traceback, *processors])


@contextlib.contextmanager
def only_these_audits_in_the_dag_file(audit_keys: Sequence[str]) -> Iterator[None]:
    """Each ``dag.test()`` imports the DAG file again: let it build only the audits of this run.

    The variable is restored afterwards, so a program (or a test session) that calls
    :func:`run_now` and later parses the DAG file for other audits still gets them.
    """
    previous = os.environ.get(environment.AUDITS_ENV_VAR)
    os.environ[environment.AUDITS_ENV_VAR] = ",".join(audit_keys)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(environment.AUDITS_ENV_VAR, None)
        else:
            os.environ[environment.AUDITS_ENV_VAR] = previous


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[None]:
    """Ctrl-C stops the whole ``cloudmarker -n``, not only the task that happens to be running.

    Airflow's task runner turns a KeyboardInterrupt inside a task into a failed task and goes on
    with the next one; the flag makes every later task fail at once and the remaining audits
    not start. Each interrupted run is failed and its batches deleted (its plugins' ``abort()``
    drop their temporary files).
    """
    tasks.STOP_REQUESTED.clear()  # a program's earlier interrupted run_now must not stop this one
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        if not tasks.STOP_REQUESTED.is_set():
            tasks.STOP_REQUESTED.set()
            metadb.say("Ctrl-C: stopping; the interrupted run is marked failed and its partial output discarded")
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_now(config: Config, config_paths: Sequence[str], keep_xcoms: bool = False) -> list[AuditResult]:
    """Run every audit in ``run`` now through ``dag.test()``; return one result per audit.

    Each run's record batches (XComs) are deleted afterwards unless ``keep_xcoms``.
    """
    # The CLI applied this already, before reading the config; a program calling run_now applies it here.
    environment.apply(environment.embedded_environment(environment.existing_paths(config_paths)))
    environment.check_airflow_settings()
    # The console shows cloudmarker's own log (the `logger` config) and Airflow's warnings and
    # errors, not Airflow's per-task INFO chatter; AIRFLOW__LOGGING__LOGGING_LEVEL=INFO brings it back.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")  # dag.test's in-process API client

    metadb.ensure_database()  # imports Airflow, which replaces the logging configuration: ours comes after
    inprocess_api.speed_up_dependency_overrides()  # every task call to dag.test's in-process API: ~20 ms less
    configure_logging(config.logger)
    if os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"].upper() not in ("INFO", "DEBUG"):
        keep_reported_tracebacks_off_the_console()
    for run in local_runs.recover_abandoned_runs(purge_run_xcoms):
        metadb.say(run.message())
    dag_file = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], environment.DAG_FILE_NAME)
    dags = factory.build_dags(
        config, config.run, notify.dag_callbacks, fileloc=dag_file, begin_hook=notify.begin_callback
    )
    results: list[AuditResult] = []
    with (
        only_these_audits_in_the_dag_file(config.run),
        local_runs.RunOwner() as owner,
        stop_on_ctrl_c(),
        notify.all_audits(config, list(config.run)) as all_results,
    ):
        for audit_key in config.run:
            dag = dags.get(audit_key)
            if tasks.STOP_REQUESTED.is_set():
                results.append(AuditResult(audit=audit_key, state="not run"))
                continue
            if dag is None:
                results.append(AuditResult(audit=audit_key, state="not built"))
                continue
            log.info("Audit %s: starting", audit_key)
            started = time.monotonic()
            result = run_audit(dag, owner, keep_xcoms)
            result.seconds = time.monotonic() - started
            log.info(
                "Audit %s: %s; %d records, %d events, %d written in %.1f s",
                audit_key,
                result.state,
                result.records,
                result.events,
                result.written,
                result.seconds,
            )
            results.append(result)
        all_results.extend(results)
    return results

"""``cloudmarker -n``: run the audits now, in-process, through Airflow's own ``dag.test()``.

Embedded defaults make a laptop run need nothing set up: an AIRFLOW_HOME of its own (unless
one is set), a SQLite metadata DB migrated on first use, XComs in a local directory through
the object-storage XCom backend, and the package's own DAG file as the DAGs folder. The DAG
file reads the same config files (passed through CLOUDMARKER_CONFIG), which ``dag.test()``
needs: it only runs DAGs it can find in a DAG bundle.
"""

from __future__ import annotations

import logging
import logging.config
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from airflow_cloudmarker import batches
from airflow_cloudmarker import config as config_mod

log = logging.getLogger("airflow_cloudmarker.runner")

XCOM_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"


def default_home() -> str:
    return os.path.join(os.path.expanduser("~"), ".cloudmarker", "airflow")


def embedded_environment(config_paths: Sequence[str]) -> dict[str, str]:
    """Environment for an in-process Airflow; values the user already set are kept."""
    home = os.path.abspath(os.path.expanduser(os.environ.get("AIRFLOW_HOME") or default_home()))
    dags_folder = str(resources.files("airflow_cloudmarker").joinpath("dags"))
    defaults = {
        "AIRFLOW_HOME": home,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__XCOM_BACKEND": XCOM_BACKEND,
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "0",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # A failing plugin should fail the laptop run now, not after minutes of retry delays.
        "AIRFLOW__CLOUDMARKER__TASK_RETRIES": "0",
    }
    env = {k: os.environ.get(k) or v for k, v in defaults.items()}
    # The DAG file must build exactly the DAGs of this run: our DAGs folder and our config files.
    env["AIRFLOW__CORE__DAGS_FOLDER"] = dags_folder
    env[config_mod.CONFIG_ENV_VAR] = os.pathsep.join(config_paths)
    return env


def existing_paths(paths: Sequence[str]) -> list[str]:
    """Absolute paths of the config files that exist (relative names depend on the cwd)."""
    result = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        if os.path.isfile(full):
            result.append(full)
    return result


def ensure_database() -> None:
    """Migrate the metadata DB when it is not at this Airflow's head revision (first use, upgrade)."""
    from airflow import settings
    from airflow.utils import db

    with settings.Session() as session:
        try:
            current = db._get_current_revision(session)
        except Exception:
            current = None
    heads = set(db._get_script_object().get_heads()) if hasattr(db, "_get_script_object") else set()
    if current and heads and current in heads:
        return
    log.info("Migrating the Airflow metadata DB at %s (first use takes a few seconds)", settings.SQL_ALCHEMY_CONN)
    db.initdb()


@dataclass
class AuditResult:
    audit: str
    state: str
    records: int = 0
    events: int = 0
    written: int = 0
    new: int = 0
    resolved: int = 0
    seconds: float = 0.0
    failed_tasks: list[str] = field(default_factory=list)
    repaired: int = 0  # records and events holding values JSON cannot carry, repaired
    skipped: int = 0  # records and events that are not records, and records an event plugin raised on


def collect_run(dag_run, seconds: float) -> AuditResult:
    """Read the run's task states and manifests back from the metadata DB and XCom store."""
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.sdk.execution_time.xcom import XCom

    result = AuditResult(audit=dag_run.dag_id, state=str(dag_run.state), seconds=seconds)
    with settings.Session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        result.failed_tasks = sorted(
            {
                ti.task_id
                for ti in tis
                if str(ti.state) in ("failed", "upstream_failed") and ti.task_id != "audit_failed"
            }
        )
        rows = (
            session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, key="return_value").all()
        )
        for row in rows:
            try:
                batches.count_manifest(result, XCom.deserialize_value(row))
            except Exception:
                continue
    return result


def purge_run_xcoms(dag_run) -> None:
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


def run_now(config: config_mod.Config, config_paths: Sequence[str], keep_xcoms: bool = False) -> list[AuditResult]:
    """Run every audit in ``run`` now through ``dag.test()``; return one result per audit.

    Each run's record batches (XComs) are deleted afterwards unless ``keep_xcoms``.
    """
    os.environ.update(embedded_environment(existing_paths(config_paths)))
    # The console shows cloudmarker's own log (the `logger` config) and Airflow's warnings and
    # errors, not Airflow's per-task INFO chatter; AIRFLOW__LOGGING__LOGGING_LEVEL=INFO brings it back.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")  # dag.test's in-process API client
    os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)

    from airflow_cloudmarker import factory, notify

    ensure_database()
    configure_logging(config.logger)
    dag_file = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "cloudmarker_dags.py")
    dags = factory.build_dags(config, config.run, notify.dag_callbacks, fileloc=dag_file)
    results: list[AuditResult] = []
    with notify.all_audits(config, list(config.run)) as all_results:
        for audit_key in config.run:
            dag = dags.get(audit_key)
            if dag is None:
                results.append(AuditResult(audit=audit_key, state="not built"))
                continue
            log.info("Audit %s: starting", audit_key)
            started = time.monotonic()
            dag_run = dag.test()
            result = collect_run(dag_run, time.monotonic() - started)
            if not keep_xcoms:
                purge_run_xcoms(dag_run)
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

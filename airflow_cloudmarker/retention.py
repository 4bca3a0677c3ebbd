"""Retention of record batches: delete the XComs (and their object-store files) of old audit runs.

The object-storage XCom backend removes a file only when its XCom is deleted through it, and
``airflow db clean`` deletes rows without the files, so a deployment's XCom store would grow with
every run. This deletes, for runs older than a cutoff, each XCom's file through the configured
backend's own ``purge`` (local directory, S3, GCS or Azure Blob alike), then the rows, then the
run's folder in the object store, which holds the record batch files the tasks wrote themselves
(``batches.batch_folder``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from types import SimpleNamespace

log = logging.getLogger("airflow_cloudmarker.retention")


@dataclass
class PurgeResult:
    """Runs and XComs purged, and how many of their stored files could not be deleted (logged, not fatal)."""

    runs: int = 0
    xcoms: int = 0
    failed: int = 0


def purge_xcoms(older_than_days: float, dag_ids: list[str] | None = None) -> PurgeResult:
    """Delete the XComs of DAG runs that started more than ``older_than_days`` days ago."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.sdk.bases.xcom import BaseXCom
    from airflow.sdk.execution_time.xcom import XCom

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    result = PurgeResult()
    with settings.Session() as session:
        runs = session.query(DagRun.dag_id, DagRun.run_id).filter(DagRun.run_after < cutoff)
        if dag_ids:
            runs = runs.filter(DagRun.dag_id.in_(dag_ids))
        for dag_id, run_id in runs.all():
            rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id).all()
            if not rows:
                continue
            result.runs += 1
            for row in rows:
                try:
                    stored = BaseXCom.deserialize_value(row)  # what the DB holds: the object's path
                    XCom.purge(SimpleNamespace(value=stored))
                except Exception as exc:  # a file already gone, or a store that refuses: keep going
                    result.failed += 1
                    log.warning(
                        "could not delete the file of XCom %s/%s/%s/%s: %s", dag_id, run_id, row.task_id, row.key, exc
                    )
                result.xcoms += 1
            session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id).delete()
            session.commit()
            if not _remove_run_folder(dag_id, run_id):
                result.failed += 1
    return result


def _remove_run_folder(dag_id: str, run_id: str) -> bool:
    """Delete ``<xcom_objectstorage_path>/<dag>/<run>/`` (its batch files); False when the store refused."""
    from airflow.sdk import ObjectStoragePath

    from airflow_cloudmarker import batches

    base = batches.object_store_base()
    if base is None:
        return True
    folder = ObjectStoragePath(base).joinpath(dag_id, run_id)
    try:
        if folder.exists():
            folder.rmdir(recursive=True)
    except Exception as exc:  # a store that refuses: the next purge tries again
        log.warning("could not delete the batch files of run %s/%s under %s: %s", dag_id, run_id, folder, exc)
        return False
    return True

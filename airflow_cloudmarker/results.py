"""What a finished audit run produced: its counts and failed tasks, read back from its task manifests.

The ``cloudmarker -n`` summary (``runner``) and the end-of-audit email (``notify``) report the
same numbers, so both read them here; neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

#: The watcher task that fails a run whose plugin task failed: not a failed plugin itself.
WATCHER_TASK_ID = "audit_failed"


@dataclass
class AuditResult:
    """One audit run in numbers, as the summary line and the end email show it."""

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
    muted: int = 0  # findings (new, open or resolved) a mutelist rule muted; not in new or resolved
    expired_rules: list[str] = field(default_factory=list)  # mutelist rules that expired, as logged


def count_manifest(counts: Any, manifest: Any) -> None:
    """Add one task's manifest to ``counts`` (anything with records, events, written, new and resolved).

    ``repaired`` and ``skipped`` (records and events), ``muted`` and ``expired_rules`` are added
    where ``counts`` has them. Muted findings are counted apart: ``new`` and ``resolved`` are the
    findings that reach alerts.
    """
    if not isinstance(manifest, dict):
        return
    kind = manifest.get("kind")
    if kind in ("cloud", "event"):
        for name in ("repaired", "skipped"):
            if manifest.get(name) and hasattr(counts, name):
                setattr(counts, name, getattr(counts, name) + manifest[name])
    if kind == "cloud":
        counts.records += manifest.get("records", 0)
    elif kind == "event":
        counts.events += manifest.get("records", 0)
    elif kind == "findings":
        _count_findings(counts, manifest)
    elif kind in ("store", "alert"):
        counts.written += manifest.get("written", 0)


def _count_findings(counts: Any, manifest: dict) -> None:
    """The findings task's counts: new and resolved without the muted ones, which count apart."""
    muted = manifest.get("muted")
    muted = muted if isinstance(muted, dict) else {}
    counts.new += manifest.get("new", 0) - muted.get("new", 0)
    counts.resolved += manifest.get("resolved", 0) - muted.get("resolved", 0)
    if hasattr(counts, "muted"):
        counts.muted += sum(muted.values())
    if hasattr(counts, "expired_rules"):
        counts.expired_rules += manifest.get("expired_rules") or []


def collect_run(dag_run: DagRun | Any, seconds: float) -> AuditResult:
    """Read the run's task states and manifests back from the metadata DB and XCom store.

    ``dag_run`` needs only ``dag_id``, ``run_id`` and ``state``.
    """
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
                if str(ti.state) in ("failed", "upstream_failed") and ti.task_id != WATCHER_TASK_ID
            }
        )
        rows = (
            session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, key="return_value").all()
        )
        for row in rows:
            try:
                count_manifest(result, XCom.deserialize_value(row))
            except Exception:
                continue
    return result

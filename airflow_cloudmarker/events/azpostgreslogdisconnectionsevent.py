"""AzPostgresLogDisconnectionsEvent: flag PostgreSQL servers with disconnection logging turned off.

Server parameter ``log_disconnections``. Logged session ends, with their duration, complete the connection
logs: together they tell who was connected and for how long. Reads ``ext.log_disconnections_enabled`` of the
``postgresql_server`` records of AzPostgres; a record that does not say gives no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE_3
from airflow_cloudmarker.events._azpostgres import parameter_check

CHECK = parameter_check(
    "log_disconnections",
    "disconnection logging",
    "Without disconnection logs, how long a session lasted, and so what it may have done, cannot be told.",
    {CIS_AZURE_3: ["5.2.7"]},
)


class AzPostgresLogDisconnectionsEvent(PostgresServerEvent):
    """Emit a ``postgres_log_disconnections_event`` for a server whose ``log_disconnections_enabled`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "postgres_log_disconnections_event"
    FLAG = is_false("log_disconnections_enabled")

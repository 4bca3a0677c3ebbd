"""AzPostgresLogConnectionsEvent: flag PostgreSQL servers with connection logging turned off.

Server parameter ``log_connections``. A log line per connection attempt (who, from where, whether it
succeeded) is what reveals password guessing and unexpected clients. Reads ``ext.log_connections_enabled`` of
the ``postgresql_server`` records of AzPostgres; a record that does not say gives no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE_3
from airflow_cloudmarker.events._azpostgres import parameter_check

CHECK = parameter_check(
    "log_connections",
    "connection logging",
    "Without connection logs, password guessing and access from unexpected clients leave no trace.",
    {CIS_AZURE_3: ["5.2.6"]},
)


class AzPostgresLogConnectionsEvent(PostgresServerEvent):
    """Emit a ``postgres_log_connections_event`` for a server whose ``log_connections_enabled`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "postgres_log_connections_event"
    FLAG = is_false("log_connections_enabled")

"""AzPostgresConnectionThrottlingEvent: flag PostgreSQL servers with connection throttling turned off.

Connection throttling slows down clients whose logins keep failing, which blunts password guessing and
connection floods. AzPostgres reads it from connection_throttle.enable (Flexible Server) or
connection_throttling (the retired Single Server). Reads ``ext.connection_throttling_enabled`` of the
``postgresql_server`` records of AzPostgres; a record that does not say gives no event.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE_3
from airflow_cloudmarker.events._azpostgres import parameter_check

CHECK = parameter_check(
    "connection_throttle.enable",
    "connection throttling",
    "Without throttling, a client can keep guessing passwords or flood the server with connections at full speed.",
    {CIS_AZURE_3: ["5.2.3"]},
    "azure_postgres_connection_throttling_off",
)


class AzPostgresConnectionThrottlingEvent(PostgresServerEvent):
    """Emit a ``postgres_connection_throttling_event`` for a server whose ``connection_throttling_enabled`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "postgres_connection_throttling_event"
    FLAG = is_false("connection_throttling_enabled")

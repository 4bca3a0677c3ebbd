"""AzPostgresLogRetentionDaysEvent: flag PostgreSQL servers that keep their logs too briefly.

The server deletes its log files after ``log_retention_days`` (server parameter
``logfiles.retention_days`` on Flexible Server); fewer than ``_min_log_retention_days`` (3 by
default) leaves no time to notice and investigate an incident. Reads ``ext.log_retention_days`` of
the ``postgresql_server`` records of AzPostgres; a record without a number there gives no event
(the original crashed on it).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import PostgresServerEvent, Problem, check_number, counted, is_number
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata
from airflow_cloudmarker.events._azpostgres import LINKS

CHECK = CheckMetadata(
    check_id="azure_postgres_log_retention_too_short",
    title="Azure PostgreSQL server keeps its logs for too few days",
    severity="low",
    resource_type="postgresql_server",
    risk="Server logs (connections, errors, slow queries) are deleted before anyone investigates an incident.",
    description="{cloud} {resource} {reference} keeps its logs for {days}, fewer than {min_days}.",
    remediation="Set the server parameter logfiles.retention_days of {resource} {reference} to at least {min_days}.",
    links=LINKS,
    controls={CIS_AZURE_3: ["5.2.4"]},
)


class AzPostgresLogRetentionDaysEvent(PostgresServerEvent):
    """Emit a ``postgres_log_retention_days_event`` for a server keeping its logs fewer days than the minimum.

    Params:
        _min_log_retention_days: the fewest days of logs a server must keep (default 3).
    """

    CHECK = CHECK
    EVENT_TYPE = "postgres_log_retention_days_event"

    def __init__(self, _min_log_retention_days: int = 3, severity: str | None = None):
        super().__init__(severity)
        plugin, name = "AzPostgresLogRetentionDaysEvent", "_min_log_retention_days"
        self._min_days = check_number(plugin, name, _min_log_retention_days)

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when ``ext.log_retention_days`` is below the minimum."""
        days = ext.get("log_retention_days")
        if not is_number(days):
            return self.ignored(com, "ext.log_retention_days is not a number") if days is not None else []
        if days >= self._min_days:
            return []
        return [Problem({"days": counted(days, "day"), "min_days": f"{self._min_days:g}"})]

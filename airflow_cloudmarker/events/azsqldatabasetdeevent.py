"""AzSQLDatabaseTDEEvent: flag Azure SQL databases without transparent data encryption.

Transparent data encryption (TDE) encrypts a database's files, backups and logs at rest, so a
copied file or backup cannot be read. Reads ``ext.tde_enabled`` of the ``sql_db`` records of AzSQL;
a record that does not say counts as disabled, as in the original. The ``master`` database is not
reported: Azure SQL cannot encrypt system databases with TDE, so an event for it could never be fixed.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, Problem, not_set
from airflow_cloudmarker.azure.normalize import field
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_sql_database_tde_disabled",
    title="Azure SQL database has transparent data encryption (TDE) turned off",
    severity="high",
    resource_type="sql_db",
    risk="The database's files, backups and transaction logs are stored unencrypted: whoever gets a copy can "
    "read the data.",
    description="{cloud} SQL database {reference} has transparent data encryption (TDE) disabled.",
    remediation="Turn on transparent data encryption for SQL database {reference} (Data encryption: On).",
    links=("https://learn.microsoft.com/azure/azure-sql/database/transparent-data-encryption-tde-overview",),
    # Not in CIS Azure 6.0 (its database controls moved to a separate benchmark); 3.0 5.1.5.
    controls={CIS_AZURE_3: ["5.1.5"]},
)


def is_master(com: dict, record: dict) -> bool:
    """True for the ``master`` system database (by its name, or the last part of its id)."""
    name = field(record.get("raw"), "name")
    reference = str(com.get("reference") or "")
    return str(name).lower() == "master" or reference.lower().endswith("/databases/master")


class AzSQLDatabaseTDEEvent(AzureEvent):
    """Emit a ``sql_db_tde_event`` for a ``sql_db`` record whose ``tde_enabled`` is not set (master excepted)."""

    CHECK = CHECK
    EVENT_TYPE = "sql_db_tde_event"
    EXT_TYPE = "sql_db"
    FLAG = not_set("tde_enabled")

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when TDE is not enabled, except on the master database."""
        return [] if is_master(com, record) else super().problems(ext, com, record)

"""RDBMSEnforceTLSEvent: flag Azure database servers that accept connections without TLS.

A database server that does not enforce TLS/SSL lets clients connect in clear text, so queries,
results and passwords cross the network readable. Reads ``com.tls_enforced`` of the ``rdbms``
records: MySQL servers of AzCloud (``ext.record_type: mysql_server``) and PostgreSQL servers of
AzPostgres (``postgresql_server``); only exactly False is an event (True, None or missing: none).

As in the original, ``com.cloud_type`` may be missing (the original's own test records have
none); a record of another cloud is ignored, since the remediation is Azure's.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, is_false
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_database_tls_not_enforced",
    title="Azure database server does not require secure transport (TLS/SSL)",
    severity="high",
    resource_type="database_server",
    risk="Clients may connect without encryption: credentials, queries and data cross the network readable "
    "and can be changed on the way.",
    description="{cloud} {resource} {reference} has TLS/SSL enforcement disabled.",
    remediation="Enforce TLS on {resource} {reference}: set the server parameter require_secure_transport to "
    "ON (Flexible Server; SSL enforcement on a Single Server).",
    links=(
        "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-networking-ssl-tls",
        "https://learn.microsoft.com/azure/mysql/flexible-server/how-to-connect-tls-ssl",
    ),
    # Not in CIS Azure 6.0 (its database controls moved to a separate benchmark); 3.0 5.2.1 for
    # PostgreSQL, 5.3.1 for MySQL (require_secure_transport ON).
    controls={CIS_AZURE_3: ["5.2.1", "5.3.1"]},
)


class RDBMSEnforceTLSEvent(AzureEvent):
    """Emit an ``rdbms_enforce_tls_event`` for an ``rdbms`` record whose ``com.tls_enforced`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "rdbms_enforce_tls_event"
    COM_TYPE = "rdbms"
    CLOUDS = ("azure", None)
    FLAG = is_false("tls_enforced", in_com=True)
    RESOURCE = "database server"

"""What the PostgreSQL server-parameter events share: the records they read and the shape of their check.

Each of them reports one server parameter that is off (``ext.<parameter>_enabled is False`` on the
``postgresql_server`` records of AzPostgres, ``com.record_type: rdbms``); only the parameter, its
wording, why it matters and its CIS control differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from airflow_cloudmarker.azure.events import AzureEvent, FalseFlagEvent
from airflow_cloudmarker.contract import CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

LINKS = (
    "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-server-parameters",
    "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-logging",
)


def parameter_check(
    parameter: str, setting: str, risk: str, controls: Mapping[str, Sequence[str]], check_id: str = ""
) -> CheckMetadata:
    """The check that the PostgreSQL server parameter ``parameter`` (``setting``, in words) is on."""
    return CheckMetadata(
        check_id=check_id or f"azure_postgres_{parameter}_off",
        title=f"Azure PostgreSQL server has {setting} turned off",
        severity="low",
        resource_type="postgresql_server",
        risk=risk,
        description=f"{{cloud}} {{resource}} {{reference}} has {setting} disabled.",
        remediation=f"Set the server parameter {parameter} of {{resource}} {{reference}} to ON.",
        links=LINKS,
        controls=controls,
    )


class PostgresServerEvent(AzureEvent):
    """An event on the ``postgresql_server`` records of AzPostgres (``com.record_type: rdbms``)."""

    COM_TYPE: ClassVar[str | None] = "rdbms"
    EXT_TYPE: ClassVar[str | None] = "postgresql_server"


class PostgresParameterEvent(PostgresServerEvent, FalseFlagEvent):
    """An event on one PostgreSQL server parameter that is off (``ext.<FIELD> is False``).

    A record that does not say (the parameter was not read, or is not a boolean) gives no event.
    """

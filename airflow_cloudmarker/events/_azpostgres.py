"""What the PostgreSQL server-parameter events share: the shape of their check, and its links.

Each of them reports one server parameter that is off (``ext.<parameter>_enabled is False`` on the
``postgresql_server`` records of AzPostgres, ``com.record_type: rdbms``); only the parameter, its
wording, why it matters and its CIS control differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

"""Pure mapping of Azure database server parameters to the record fields the original events read.

The original Cloudmarker read Azure Database for PostgreSQL *single* servers (retired on 28 March
2025): its ``postgresql_server`` records carry ``ext.<parameter>_enabled`` flags, ``ext.log_retention_days``
and ``com.tls_enforced``. Flexible servers expose the same settings as server parameters, some
under new names (``connection_throttle.enable``, ``logfiles.retention_days``) and TLS enforcement as
the ``require_secure_transport`` parameter instead of the single server's ``sslEnforcement``
property. This module maps either generation's parameters to the same fields, so the six Postgres
events and RDBMSEnforceTLSEvent keep working. No SDK import: unit tests and events use plain dicts.
"""

from __future__ import annotations

from typing import Any

from airflow_cloudmarker.azure.normalize import field

#: ext field -> the server parameters that set it, the flexible-server name first (the single
#: server's name after it, so records of either generation map the same way). Boolean parameters.
BOOLEAN_PARAMETERS: dict[str, tuple[str, ...]] = {
    "log_checkpoints_enabled": ("log_checkpoints",),
    "log_connections_enabled": ("log_connections",),
    "log_disconnections_enabled": ("log_disconnections",),
    "log_duration_enabled": ("log_duration",),
    "connection_throttling_enabled": ("connection_throttle.enable", "connection_throttling"),
}
#: ext field -> the integer server parameters that set it (flexible-server name first).
INTEGER_PARAMETERS: dict[str, tuple[str, ...]] = {
    "log_retention_days": ("logfiles.retention_days", "log_retention_days"),
}
#: The server parameter that makes a flexible server (PostgreSQL or MySQL) refuse non-TLS connections.
TLS_PARAMETER = "require_secure_transport"
#: String parameters copied to ext as they are, when the server has them.
TEXT_PARAMETERS: dict[str, str] = {"ssl_min_protocol_version": "ssl_min_protocol_version"}
#: The fields kept of each server parameter in ``raw.configuration``.
CONFIGURATION_FIELDS = ("name", "value", "data_type", "default_value", "source")


def configuration_entry(parameter: dict) -> dict[str, Any]:
    """One server parameter (a Configuration's ``as_dict()``, wire or flattened shape) as a flat dict."""
    return {name: field(parameter, name) for name in CONFIGURATION_FIELDS}


def parameter_values(configuration: list[dict]) -> dict[str, Any]:
    """Parameter name (lower case) -> value, from ``configuration_entry`` dicts; nameless entries skipped."""
    return {
        str(entry["name"]).lower(): entry.get("value")
        for entry in configuration
        if isinstance(entry, dict) and entry.get("name")
    }


def is_on(value: Any) -> bool:
    """Whether a Boolean server parameter's value is ``on`` (Azure answers ``on``/``ON``/``off``/``OFF``)."""
    return str(value).strip().lower() == "on"


def as_int(value: Any) -> int | None:
    """An Integer server parameter's value as an int, or None when it is not a whole number."""
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _first(values: dict[str, Any], names: tuple[str, ...]) -> tuple[bool, Any]:
    for name in names:
        if name in values:
            return True, values[name]
    return False, None


def tls_enforced(values: dict[str, Any]) -> bool | None:
    """``require_secure_transport``: on -> True, any other value -> False, no such parameter -> None."""
    if TLS_PARAMETER not in values:
        return None
    return is_on(values[TLS_PARAMETER])


def postgres_ext(values: dict[str, Any]) -> dict[str, Any]:
    """The derived ``ext`` fields of a PostgreSQL server, each only when the server has its parameter.

    ``values`` is :func:`parameter_values` of the server's parameters. An Integer parameter whose
    value is not a whole number maps to None (an event comparing it then reports nothing).
    """
    ext: dict[str, Any] = {}
    for name, parameters in BOOLEAN_PARAMETERS.items():
        present, value = _first(values, parameters)
        if present:
            ext[name] = is_on(value)
    for name, parameters in INTEGER_PARAMETERS.items():
        present, value = _first(values, parameters)
        if present:
            ext[name] = as_int(value)
    for name, parameter in TEXT_PARAMETERS.items():
        if parameter in values:
            ext[name] = values[parameter]
    return ext

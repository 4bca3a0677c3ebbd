"""Database and web app estate for ``FakeAzure``: PostgreSQL and MySQL flexible servers with their
server parameters, and web apps, in the documented ARM JSON shapes at the paths the SDKs call.

Per subscription ``N`` (resource group ``rg-db-N``):

- PostgreSQL flexible servers (``Microsoft.DBforPostgreSQL/flexibleServers``, listed per
  subscription; each one's ``configurations`` list is paged like every list):
  ``pg-N-healthy`` (every log parameter on, ``connection_throttle.enable`` ON, ``logfiles.retention_days``
  7, ``require_secure_transport`` on), ``pg-N-unhealthy`` (all off, 1 day, ``require_secure_transport``
  off) and ``pg-N-partial`` (no throttling, retention or TLS parameter at all).
- MySQL flexible servers (``Microsoft.DBforMySQL/flexibleServers``): ``mysql-N-tls``
  (``require_secure_transport`` ON) and ``mysql-N-plain`` (OFF), each with the GET of that parameter.
- Web apps (``Microsoft.Web/sites``): ``app-N`` (a web app) and ``func-N`` (a function app).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from servers.azure import FakeAzure

PG = "Microsoft.DBforPostgreSQL/flexibleServers"
MYSQL = "Microsoft.DBforMySQL/flexibleServers"
SITES = "Microsoft.Web/sites"

#: (name, dataType, defaultValue) of the PostgreSQL parameters the estate sets
PG_PARAMETERS = {
    "log_checkpoints": ("Boolean", "on"),
    "log_connections": ("Boolean", "on"),
    "log_disconnections": ("Boolean", "off"),
    "log_duration": ("Boolean", "off"),
    "connection_throttle.enable": ("Boolean", "on"),
    "logfiles.retention_days": ("Integer", "3"),
    "require_secure_transport": ("Boolean", "on"),
    "ssl_min_protocol_version": ("Enumeration", "TLSv1.2"),
    "array_nulls": ("Boolean", "on"),
    "work_mem": ("Integer", "4096"),
}
HEALTHY = {
    "log_checkpoints": "on",
    "log_connections": "ON",  # Azure answers both cases; the mapping compares case-insensitively
    "log_disconnections": "on",
    "log_duration": "on",
    "connection_throttle.enable": "ON",
    "logfiles.retention_days": "7",
    "require_secure_transport": "on",
    "ssl_min_protocol_version": "TLSv1.2",
}
UNHEALTHY = {
    "log_checkpoints": "off",
    "log_connections": "off",
    "log_disconnections": "off",
    "log_duration": "OFF",
    "connection_throttle.enable": "off",
    "logfiles.retention_days": "1",
    "require_secure_transport": "off",
}
#: the parameters a partial server lacks (an older engine or a trimmed test double)
PARTIAL_MISSING = ("connection_throttle.enable", "logfiles.retention_days", "require_secure_transport")


def subscription_id(index: int) -> str:
    """The id of FakeAzure's subscription ``index``."""
    return f"00000000-0000-0000-0000-{index:012d}"


def server_id(index: int, kind: str, name: str) -> str:
    """The ARM id of a server of ``kind`` (``PG``, ``MYSQL`` or ``SITES``) in subscription ``index``."""
    return f"/subscriptions/{subscription_id(index)}/resourceGroups/rg-db-{index}/providers/{kind}/{name}"


def pg_server(index: int, name: str) -> dict[str, Any]:
    """A PostgreSQL flexible server as ``servers.list_by_subscription`` returns it."""
    return {
        "id": server_id(index, PG, name),
        "name": name,
        "type": PG,
        "location": "eastus",
        "tags": {"env": "test"},
        "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
        "properties": {
            "administratorLogin": "pgadmin",
            "version": "16",
            "minorVersion": "8",
            "state": "Ready",
            "fullyQualifiedDomainName": f"{name}.postgres.database.azure.com",
            "storage": {"storageSizeGB": 128, "autoGrow": "Disabled", "tier": "P10"},
            "authConfig": {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
            "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
            "network": {"publicNetworkAccess": "Enabled"},
            "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
            "availabilityZone": "1",
            "replicationRole": "Primary",
        },
    }


def pg_parameter(server: str, name: str, value: str | None = None) -> dict[str, Any]:
    """One PostgreSQL server parameter as ``configurations.list_by_server`` returns it."""
    data_type, default = PG_PARAMETERS[name]
    allowed = {"Boolean": "on,off", "Integer": "1-7" if name.startswith("logfiles.") else "64-2097151"}
    return {
        "id": f"{server}/configurations/{name}",
        "name": name,
        "type": f"{PG}/configurations",
        "properties": {
            "value": default if value is None else value,
            "description": f"The {name} server parameter.",
            "defaultValue": default,
            "dataType": data_type,
            "allowedValues": allowed.get(data_type, "TLSv1.2,TLSv1.3"),
            "source": "system-default" if value in (None, default) else "user-override",
            "isDynamicConfig": True,
            "isReadOnly": False,
            "isConfigPendingRestart": False,
            "documentationLink": "https://www.postgresql.org/docs/16/runtime-config.html",
        },
    }


def pg_parameters(server: str, values: dict[str, str], missing: tuple[str, ...] = ()) -> list[dict]:
    """Every parameter of a server: ``values`` where given, the default otherwise, none of ``missing``."""
    return [pg_parameter(server, name, values.get(name)) for name in PG_PARAMETERS if name not in missing]


def mysql_server(index: int, name: str) -> dict[str, Any]:
    """A MySQL flexible server as ``servers.list`` returns it."""
    return {
        "id": server_id(index, MYSQL, name),
        "name": name,
        "type": MYSQL,
        "location": "eastus",
        "tags": {},
        "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
        "properties": {
            "administratorLogin": "myadmin",
            "version": "8.0.21",
            "state": "Ready",
            "fullyQualifiedDomainName": f"{name}.mysql.database.azure.com",
            "storage": {"storageSizeGB": 20, "iops": 360, "autoGrow": "Enabled"},
            "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
            "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
            "network": {"publicNetworkAccess": "Enabled"},
            "replicationRole": "None",
        },
    }


def mysql_tls_parameter(server: str, value: str) -> dict[str, Any]:
    """The ``require_secure_transport`` parameter as ``configurations.get`` returns it."""
    return {
        "id": f"{server}/configurations/require_secure_transport",
        "name": "require_secure_transport",
        "type": f"{MYSQL}/configurations",
        "properties": {
            "value": value,
            "description": "Whether client connections to the server are required to use secure transport.",
            "defaultValue": "ON",
            "dataType": "Enumeration",
            "allowedValues": "ON,OFF",
            "source": "system-default" if value == "ON" else "user-override",
            "isReadOnly": "False",
            "isConfigPendingRestart": "False",
            "isDynamicConfig": "True",
        },
    }


def web_app(index: int, name: str, kind: str) -> dict[str, Any]:
    """A site as ``web_apps.list`` returns it (``kind`` ``app`` or ``functionapp``)."""
    return {
        "id": server_id(index, SITES, name),
        "name": name,
        "type": SITES,
        "kind": kind,
        "location": "eastus",
        "tags": {},
        "properties": {
            "state": "Running",
            "enabled": True,
            "hostNames": [f"{name}.azurewebsites.net"],
            "defaultHostName": f"{name}.azurewebsites.net",
            "httpsOnly": kind == "app",
            "clientCertEnabled": False,
            "serverFarmId": f"/subscriptions/{subscription_id(index)}/resourceGroups/rg-db-{index}/providers/"
            f"Microsoft.Web/serverfarms/plan-{index}",
        },
    }


def populate(az: FakeAzure, web_apps: bool = True) -> None:
    """Add every subscription's PostgreSQL and MySQL flexible servers and (unless ``web_apps`` is false:
    ``azure_web`` serves sites with their configurations) two web apps to ``az``."""
    for index, sid in enumerate(az.subscription_ids()):
        assert sid == subscription_id(index), "FakeAzure numbers its subscriptions 0, 1, ..."
        servers = {
            f"pg-{index}-healthy": pg_parameters(server_id(index, PG, f"pg-{index}-healthy"), HEALTHY),
            f"pg-{index}-unhealthy": pg_parameters(server_id(index, PG, f"pg-{index}-unhealthy"), UNHEALTHY),
            f"pg-{index}-partial": pg_parameters(
                server_id(index, PG, f"pg-{index}-partial"), {"log_duration": "off"}, PARTIAL_MISSING
            ),
        }
        az.add_list(f"/subscriptions/{sid}/providers/{PG}", [pg_server(index, name) for name in servers])
        for name, parameters in servers.items():
            az.add_list(f"{server_id(index, PG, name)}/configurations", parameters)
        mysql = {f"mysql-{index}-tls": "ON", f"mysql-{index}-plain": "OFF"}
        az.add_list(f"/subscriptions/{sid}/providers/{MYSQL}", [mysql_server(index, name) for name in mysql])
        for name, value in mysql.items():
            server = server_id(index, MYSQL, name)
            az.add_object(f"{server}/configurations/require_secure_transport", mysql_tls_parameter(server, value))
        if web_apps:
            az.add_list(
                f"/subscriptions/{sid}/providers/{SITES}",
                [web_app(index, f"app-{index}", "app"), web_app(index, f"func-{index}", "functionapp")],
            )


def serve_in_process(directory: str, info: Any, **kwargs: Any) -> None:
    """``servers.azure.serve_in_process`` with this estate added (for bench/bench_azure.py)."""
    latency = kwargs.pop("latency", 0.0)
    with FakeAzure(Path(directory), **kwargs) as az:
        populate(az)
        az.latency = latency
        info.put((az.url, az.ca_file, az.tenant, az.client, az.secret, list(az.subs)))
        threading.Event().wait()

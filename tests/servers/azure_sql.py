"""Azure SQL servers, databases and their TDE state for ``FakeAzure``.

Per subscription two servers, each with its ``master`` database and user databases with TDE on and off.
Served where the SDK calls: ``servers.list()`` (``/subscriptions/{id}/providers/Microsoft.Sql/servers``),
``databases.list_by_server`` (``.../servers/{server}/databases``) and
``transparent_data_encryptions.get(..., "current")`` (``.../databases/{db}/transparentDataEncryption/current``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servers.azure import FakeAzure

SERVER_TYPE = "Microsoft.Sql/servers"

#: server suffix -> {database name: TDE state}; master is listed by Azure with TDE off
SERVERS = {
    "a": {"master": "Disabled", "orders": "Enabled", "legacy": "Disabled"},
    "b": {"master": "Disabled", "reports": "Enabled"},
}


def server(sid: str, rg: str, name: str) -> dict:
    """One logical server as Servers - List returns it."""
    return {
        "id": f"/subscriptions/{sid}/resourceGroups/{rg}/providers/{SERVER_TYPE}/{name}",
        "name": name,
        "type": SERVER_TYPE,
        "kind": "v12.0",
        "location": "eastus",
        "tags": {"env": "test"},
        "properties": {
            "administratorLogin": "sqladmin",
            "version": "12.0",
            "state": "Ready",
            "fullyQualifiedDomainName": f"{name}.database.windows.net",
            "publicNetworkAccess": "Enabled",
            "minimalTlsVersion": "1.2",
        },
    }


def database(server_id: str, name: str) -> dict:
    """One database as Databases - List By Server returns it."""
    system = name == "master"
    return {
        "id": f"{server_id}/databases/{name}",
        "name": name,
        "type": f"{SERVER_TYPE}/databases",
        "kind": "v12.0,system" if system else "v12.0,user,vcore",
        "location": "eastus",
        "sku": {"name": "System" if system else "GP_S_Gen5", "tier": "System" if system else "GeneralPurpose"},
        "properties": {
            "collation": "SQL_Latin1_General_CP1_CI_AS",
            "status": "Online",
            "databaseId": "6c764297-577b-470f-9af4-96d3d41e2ba3",
            "creationDate": "2026-01-01T00:00:00Z",
            "requestedServiceObjectiveName": "System" if system else "GP_S_Gen5_1",
        },
    }


def tde(database_id: str, state: str) -> dict:
    """A database's TDE resource as Transparent Data Encryptions - Get returns it."""
    return {
        "id": f"{database_id}/transparentDataEncryption/Current",
        "name": "Current",
        "type": f"{SERVER_TYPE}/databases/transparentDataEncryption",
        "properties": {"state": state},
    }


def populate(az: FakeAzure) -> None:
    """Serve two servers, their databases and TDE states in every subscription of ``az``."""
    for index, sid in enumerate(az.subscription_ids()):
        rg = f"rg-{index}"
        servers = [server(sid, rg, f"sql-{index}-{suffix}") for suffix in SERVERS]
        az.add_list(f"/subscriptions/{sid}/providers/{SERVER_TYPE}", servers)
        for body, states in zip(servers, SERVERS.values(), strict=True):
            az.add_list(f"{body['id']}/databases", [database(body["id"], name) for name in states])
            for name, state in states.items():
                db_id = f"{body['id']}/databases/{name}"
                az.add_object(f"{db_id}/transparentDataEncryption/current", tde(db_id, state))

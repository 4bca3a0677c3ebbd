"""AzSQL: one record per Azure SQL database with its transparent data encryption (TDE) state.

Per subscription: one server list call, one database list call per server (both in the listing
stage), then one TDE call per database (``transparentDataEncryption/current``), on ``threads``
threads. Each database is an item of its own, so a TDE call that fails loses only that database's
record, and a server whose database list fails is named in the fetch's ``ItemReadError``.

The ``master`` system database is skipped: Azure manages its encryption, its TDE state is not the
user's to set (Prowler skips it too), and reading it would raise a finding nobody can resolve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.attrs import attr

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: Databases Azure manages itself (compared case-insensitively with the database name)
SYSTEM_DATABASES = frozenset({"master"})


@dataclass(frozen=True)
class Database:
    """One listed database and its server, or a server whose database list failed (``error``)."""

    server: Any
    database: Any = None
    error: BaseException | None = None

    @property
    def name(self) -> str:
        """The resource id that an error message names."""
        return str(self.server.id if self.database is None else self.database.id)


class AzSQL(arm.ResourceCloud):
    """Read every database of every Azure SQL server of every subscription, with its TDE state.

    Params: as AzVM: tenant, client, secret or conn_id (service principal; all null for
    DefaultAzureCredential); processes (accepted, unused), threads (calls at once), _max_subs,
    _max_recs (databases per subscription: servers are listed only until that many are found);
    authority_host, resource_manager_url, retry_backoff.

    Records: ``ext.record_type: sql_db``, ``com.record_type: database``; ``ext.tde_enabled``
    (TDE state ``Enabled``), ``ext.server_name``; ``raw`` the database with its TDE resource under
    ``raw.transparent_data_encryption``. The ``master`` database is skipped.

    Example config::

        plugins:
          myazsql:
            plugin: cloudmarker.clouds.azsql.AzSQL
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A SqlManagementClient for the subscription."""
        from azure.mgmt.sql import SqlManagementClient

        return SqlManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterator[Database]:
        """Every user database of every server; a server whose database list fails becomes a failed item."""
        for server in clients.servers.list():
            try:
                databases = list(clients.databases.list_by_server(arm.resource_group(server.id), server.name))
            except Exception as exc:
                yield Database(server, error=exc)
                continue
            for database in databases:
                if str(database.name).lower() not in SYSTEM_DATABASES:
                    yield Database(server, database)

    def item_records(self, clients: Any, item: Database, sub: dict) -> Iterable[dict]:
        """The database with its TDE state (one call)."""
        if item.error is not None:
            raise item.error
        server = item.server
        tde = clients.transparent_data_encryptions.get(
            arm.resource_group(server.id), server.name, item.database.name, "current"
        )
        return [sql_db_record(item.database, tde, server.name, sub)]

    def item_name(self, item: Database) -> str:
        """The database id (the server id when its database list failed)."""
        return item.name


def sql_db_record(database: Any, tde: Any, server_name: str, sub: dict) -> dict:
    """The ``sql_db`` record of one SDK ``Database`` and its ``LogicalDatabaseTransparentDataEncryption``."""
    return arm.record(
        "sql_db",
        "database",
        {**database.as_dict(), "transparent_data_encryption": tde.as_dict()},
        sub,
        database.id,
        tde_enabled=str(attr(tde, "state")).lower() == "enabled",
        server_name=server_name,
    )

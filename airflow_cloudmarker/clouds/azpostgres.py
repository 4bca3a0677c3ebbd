"""AzPostgres: one record per Azure Database for PostgreSQL flexible server, with its server parameters.

The original plugin read *single* servers, retired on 28 March 2025 (remaining ones were migrated
to flexible servers), so it would find nothing today. This one lists the flexible servers of each
subscription (one call) and reads each server's parameters (one paged call per server); the
parameters are mapped to the original record fields by :mod:`airflow_cloudmarker.azure.rdbms`, so the
original's Postgres events and RDBMSEnforceTLSEvent read these records unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm, rdbms
from airflow_cloudmarker.azure.normalize import field

if TYPE_CHECKING:
    from collections.abc import Iterable


class AzPostgres(arm.ResourceCloud):
    """Read every PostgreSQL flexible server of every subscription with its server parameters.

    Params: the same as AzVM (tenant, client, secret or conn_id; processes, threads, _max_subs,
    _max_recs (servers per subscription); authority_host, resource_manager_url, retry_backoff).

    Calls: one ``servers.list_by_subscription`` per subscription, then one
    ``configurations.list_by_server`` per server (about 400 parameters: a few pages).

    Example config::

        plugins:
          azpostgres:
            plugin: cloudmarker.clouds.azpostgres.AzPostgres
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A PostgreSQLManagementClient (package azure-mgmt-postgresqlflexibleservers) for the subscription."""
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

        return PostgreSQLManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """Every flexible server of the subscription."""
        return clients.servers.list_by_subscription()

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The server with all its server parameters (one paged call)."""
        parameters = clients.configurations.list_by_server(arm.resource_group(item.id), item.name)
        configuration = [rdbms.configuration_entry(p.as_dict()) for p in parameters]
        return [self.server_record(item.as_dict(), configuration, sub)]

    @staticmethod
    def server_record(server: dict, configuration: list[dict], sub: dict) -> dict:
        """The ``postgresql_server`` record of one server (``raw.configuration``: its parameters)."""
        values = rdbms.parameter_values(configuration)
        record = arm.record(
            "postgresql_server",
            "rdbms",
            {**server, "configuration": configuration},
            sub,
            server.get("id"),
            server_version=field(server, "version"),
            **rdbms.postgres_ext(values),
        )
        record["com"]["tls_enforced"] = rdbms.tls_enforced(values)
        return record

"""AzWebApp: one record per App Service site (web apps and function apps) with its site configuration.

The site list leaves the configuration out, so each site costs one ``get_configuration`` call
(``.../sites/{name}/config/web``) after one list call per subscription.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import arm
from airflow_cloudmarker.azure.attrs import attr

if TYPE_CHECKING:
    from collections.abc import Iterable


class AzWebApp(arm.ResourceCloud):
    """Read every App Service site (web and function apps) of every subscription with its configuration.

    Params: as AzVM: tenant, client, secret or conn_id (service principal; all null for
    DefaultAzureCredential); processes (accepted, unused), threads (calls at once), _max_subs,
    _max_recs (sites per subscription); authority_host, resource_manager_url, retry_backoff.

    Records: ``ext.record_type: web_app_config``, ``com.record_type: web_app``; ``ext.https_only``,
    ``ext.client_cert_enabled`` (from the site), ``ext.http20_enabled``, ``ext.min_tls_version``
    (from its configuration), ``ext.kind``; ``raw`` the site with its configuration under ``raw.config``.

    Example config::

        plugins:
          myazwebapp:
            plugin: cloudmarker.clouds.azwebapp.AzWebApp
            params:
              conn_id: azure_audit
    """

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> Any:
        """A WebSiteManagementClient for the subscription."""
        from azure.mgmt.web import WebSiteManagementClient

        return WebSiteManagementClient(cred, subscription_id, **kwargs)

    def list_items(self, clients: Any, sub: dict) -> Iterable[Any]:
        """Every site of the subscription, function apps included."""
        return clients.web_apps.list()

    def item_records(self, clients: Any, item: Any, sub: dict) -> Iterable[dict]:
        """The site with its configuration (one call)."""
        config = clients.web_apps.get_configuration(arm.resource_group(item.id), item.name)
        return [web_app_record(item, config, sub)]


def web_app_record(site: Any, config: Any, sub: dict) -> dict:
    """The ``web_app_config`` record of one SDK ``Site`` and its ``SiteConfigResource``."""
    return arm.record(
        "web_app_config",
        "web_app",
        {**site.as_dict(), "config": config.as_dict()},
        sub,
        site.id,
        https_only=attr(site, "https_only"),
        client_cert_enabled=attr(site, "client_cert_enabled"),
        http20_enabled=attr(config, "http20_enabled"),
        min_tls_version=attr(config, "min_tls_version"),
        kind=attr(site, "kind"),
    )

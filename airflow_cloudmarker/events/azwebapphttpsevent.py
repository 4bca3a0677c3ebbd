"""AzWebAppHttpsEvent: flag web apps that serve plain HTTP.

A web app without "HTTPS Only" answers requests over plain HTTP instead of redirecting them to
HTTPS, so pages, cookies and credentials cross the network readable and can be altered. Reads
``ext.https_only`` of the ``web_app_config`` records of AzWebApp (not set: an event).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import WebAppEvent, not_set
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_webapp_https_only_disabled",
    title="Azure web app does not have 'HTTPS Only' turned on",
    severity="medium",
    resource_type="web_app",
    risk="Requests over plain HTTP can be read and changed on the way: session cookies and credentials leak.",
    description="{cloud} web app {reference} has HTTPS-only traffic disabled.",
    remediation="Turn on 'HTTPS Only' for web app {reference}, so HTTP requests are redirected to HTTPS.",
    links=("https://learn.microsoft.com/azure/app-service/configure-ssl-bindings",),
    # Not in CIS Azure 6.0 (App Service left the Foundations benchmark); 3.0 9.1.
    controls={CIS_AZURE_3: ["9.1"]},
)


class AzWebAppHttpsEvent(WebAppEvent):
    """Emit a ``web_app_https_event`` for a ``web_app_config`` record whose ``https_only`` is not set."""

    CHECK = CHECK
    EVENT_TYPE = "web_app_https_event"
    FLAG = not_set("https_only")

"""AzWebAppHttp20Event: flag web apps that do not offer HTTP/2.

HTTP/2 fixes weaknesses of HTTP/1.1 (head-of-line blocking, header handling) and is only used
over TLS; CIS asked for it on App Service. Reads ``ext.http20_enabled`` of the ``web_app_config``
records of AzWebApp (not set: an event).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import WebAppEvent, not_set
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_webapp_http2_disabled",
    title="Azure web app does not have HTTP/2 (HTTP20enabled) turned on",
    severity="low",
    resource_type="web_app",
    risk="Clients fall back to HTTP/1.1, missing the protocol's security and performance improvements.",
    description="{cloud} web app {reference} has HTTP 2.0 disabled.",
    remediation="Set the HTTP version of web app {reference} to 2.0 (configuration, general settings).",
    links=("https://learn.microsoft.com/azure/app-service/configure-common",),
    # Not in CIS Azure 6.0 (App Service left the Foundations benchmark); 3.0 9.10.
    controls={CIS_AZURE_3: ["9.10"]},
)


class AzWebAppHttp20Event(WebAppEvent):
    """Emit a ``web_app_http20_event`` for a ``web_app_config`` record whose ``http20_enabled`` is not set."""

    CHECK = CHECK
    EVENT_TYPE = "web_app_http20_event"
    FLAG = not_set("http20_enabled")

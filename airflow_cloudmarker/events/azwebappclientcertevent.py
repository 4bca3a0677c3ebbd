"""AzWebAppClientCertEvent: flag web apps that do not ask clients for certificates.

With incoming client certificates on, App Service asks every client for a TLS certificate (mutual
TLS) and passes it to the app, which can then admit known clients only. Reads
``ext.client_cert_enabled`` of the ``web_app_config`` records of AzWebApp (not set: an event).
Public web sites usually cannot require client certificates: raise this one's severity only for
apps that serve known clients, or leave it out of the audit.
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import WebAppEvent, not_set
from airflow_cloudmarker.contract import CIS_AZURE_2, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_webapp_client_certificates_disabled",
    title="Azure web app does not have incoming Client Certificates turned on",
    severity="low",
    resource_type="web_app",
    risk="Any client can connect: the app cannot tell known clients from others by their certificates.",
    description="{cloud} web app {reference} has client certificates (mutual TLS) disabled.",
    remediation="Turn on incoming client certificates for web app {reference} (Client certificate mode: "
    "Require) if its clients can present certificates.",
    links=("https://learn.microsoft.com/azure/app-service/app-service-web-configure-tls-mutual-auth",),
    # Only CIS Azure 2.0 had this control (9.4); it is gone from 2.1 on.
    controls={CIS_AZURE_2: ["9.4"]},
)


class AzWebAppClientCertEvent(WebAppEvent):
    """Emit a ``web_app_client_certificate_event`` for a ``web_app_config`` record without client certificates."""

    CHECK = CHECK
    EVENT_TYPE = "web_app_client_certificate_event"
    FLAG = not_set("client_cert_enabled")

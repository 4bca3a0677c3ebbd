"""AzWebAppTLSEvent: flag web apps that accept TLS versions older than the minimum.

TLS 1.0 and 1.1 have known weaknesses and are no longer supported by browsers; a web app whose
minimum TLS version is below ``_min_tls_version`` (1.2 by default) lets clients and attackers
negotiate them. Reads ``ext.min_tls_version`` (``'1.0'``, ``'1.2'``, ...) of the ``web_app_config``
records of AzWebApp; a record without a version, or with one that is not a number, gives no event
(the original crashed on both).
"""

from __future__ import annotations

import math
from typing import Any

from airflow_cloudmarker.azure.events import Problem, WebAppEvent, check_number
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

CHECK = CheckMetadata(
    check_id="azure_webapp_tls_below_minimum",
    title="Azure web app does not use the latest TLS version: its minimum TLS version is too old",
    severity="medium",
    resource_type="web_app",
    risk="Clients can connect with old TLS versions whose weaknesses let an attacker on the path read or "
    "change the traffic.",
    description="{cloud} web app {reference} accepts TLS {version}, older than the minimum TLS version {minimum}.",
    remediation="Set the minimum TLS version of web app {reference} to {minimum} or later.",
    links=("https://learn.microsoft.com/azure/app-service/overview-tls",),
    # Not in CIS Azure 6.0 (App Service left the Foundations benchmark); 3.0 9.4.
    controls={CIS_AZURE_3: ["9.4"]},
)


def tls_version(value: Any) -> float | None:
    """The version number of ``'1.2'`` or ``1.2``; None for anything else (None, ``'abc'``, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        version = float(value)
    except ValueError:
        return None
    return version if math.isfinite(version) else None


class AzWebAppTLSEvent(WebAppEvent):
    """Emit a ``web_app_tls_event`` for a ``web_app_config`` record whose minimum TLS version is too old.

    Params:
        _min_tls_version: the oldest acceptable TLS version, a number such as 1.2 (default 1.2).
    """

    CHECK = CHECK
    EVENT_TYPE = "web_app_tls_event"

    def __init__(self, _min_tls_version: float = 1.2, severity: str | None = None):
        super().__init__(severity)
        self._minimum = check_number("AzWebAppTLSEvent", "_min_tls_version", _min_tls_version)

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when ``float(min_tls_version)`` is below the minimum."""
        value = ext.get("min_tls_version")
        version = tls_version(value)
        if version is None:
            return self.ignored(com, f"ext.min_tls_version {value!r} is not a version") if value is not None else []
        if version >= self._minimum:
            return []
        return [Problem({"version": str(value), "minimum": f"{self._minimum:g}"})]

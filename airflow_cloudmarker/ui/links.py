"""Links from a finding's reference to the resource in its cloud's console, where the reference allows one."""

from __future__ import annotations

import re
from urllib.parse import quote

AZURE_PORTAL = "https://portal.azure.com/#@/resource"
GCP_CONSOLE = "https://console.cloud.google.com"
_GCP_SELF_LINK = re.compile(
    r"https://(?:www|compute)\.googleapis\.com/compute/(?:v1|beta)/projects/(?P<project>[^/]+)/(?P<rest>.+)"
)
_GCP_PROJECT = re.compile(r"//cloudresourcemanager\.googleapis\.com/(?:projects/)?(?P<project>[^/]+)")


def console_url(reference: object) -> str | None:
    """The console page of the resource ``reference`` names (an Azure resource id, a GCP self link), else None."""
    if not isinstance(reference, str):
        return None
    if reference.lower().startswith("/subscriptions/"):
        return AZURE_PORTAL + quote(reference, safe="/-_.~")
    project = _GCP_PROJECT.fullmatch(reference)
    if project:
        return f"{GCP_CONSOLE}/home/dashboard?project={quote(project['project'])}"
    match = _GCP_SELF_LINK.fullmatch(reference)
    return _gcp_page(match["project"], match["rest"]) if match else None


def _gcp_page(project: str, rest: str) -> str:
    """The console page of a compute resource (firewall, instance), else the project's compute page."""
    parts = rest.split("/")
    query = f"?project={quote(project)}"
    if len(parts) == 3 and parts[0] == "global" and parts[1] == "firewalls":
        return f"{GCP_CONSOLE}/networking/firewalls/details/{quote(parts[2])}{query}"
    if len(parts) == 4 and parts[0] == "zones" and parts[2] == "instances":
        return f"{GCP_CONSOLE}/compute/instancesDetail/zones/{quote(parts[1])}/instances/{quote(parts[3])}{query}"
    return f"{GCP_CONSOLE}/compute/overview{query}"

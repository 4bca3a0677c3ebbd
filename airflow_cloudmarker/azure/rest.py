"""Azure Resource Manager GETs as plain JSON, through one small azure-core pipeline per plugin instance.

Why not the azure-mgmt-* clients: a fetch task reads thousands of subscriptions, and for each one a
management client per resource family built a pipeline of fourteen policies, then every response
was deserialized into SDK models that the plugin turned straight back into dicts (``as_dict()``).
That, not the network, was most of a large tenant's fetch time (issue 17: CPU-bound). A plugin
that keeps ARM's wire shape anyway reads here instead: the same GETs, and the policies that matter
kept (azure-core's retry policy, which retries 429 and 5xx as ``Retry-After`` says; ARM's bearer
token policy; a client request id and a user agent), on the plugin's counting transport (its call
counts and the per-subscription ``ThrottleGate``). Left out: logging and tracing policies (they cost
CPU on every call and log nothing at the levels set here), redirects (ARM GETs do not redirect) and
the SDK's automatic resource provider registration (an audit never registers: ARM's 409 for an
unregistered provider reaches the plugin, which reads it as an empty list).

The paths and API versions are written here, not taken from an SDK: they are those of the
azure-mgmt-* releases this was written against, and a record's raw shape is that of its API
version, so an SDK upgrade does not change what is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The user agent's moniker: ARM's logs name the caller ("azsdk-python-airflow-cloudmarker Python/...")
USER_AGENT = "airflow-cloudmarker"
#: Subscriptions, listed and read (the API version of azure-mgmt-resource-subscriptions 1.0)
SUBSCRIPTIONS = "/subscriptions"
SUBSCRIPTIONS_API = "2022-12-01"


def _error_map() -> dict[int, type]:
    """Status -> exception, as every azure-mgmt-* operation maps them (so callers catch the same errors)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
    )

    return {
        401: ClientAuthenticationError,
        404: ResourceNotFoundError,
        409: ResourceExistsError,
        304: ResourceNotModifiedError,
    }


def path(*segments: str) -> str:
    """An ARM path from its segments, each quoted as the SDKs quote path parameters."""
    return "".join("/" + quote(str(segment).strip("/"), safe="") for segment in segments)


def resource_path(resource_id: str, *segments: str) -> str:
    """The path of ``resource_id`` (as ARM lists it: ``/subscriptions/.../name``), then ``segments``."""
    return path(*[part for part in str(resource_id).split("/") if part], *segments)


class ArmReader:
    """GET ARM paths through one pipeline: JSON bodies, list pages followed through ``nextLink``.

    A non-200 answer raises what the SDK would: ``ResourceNotFoundError`` (404), ``ResourceExistsError``
    (409), ``ClientAuthenticationError`` (401), else ``HttpResponseError`` with ARM's error code and
    message (``exc.error.code``). Thread-safe: the pipeline holds no per-call state.
    """

    def __init__(self, resource_manager_url: str, credential: Any, transport: Any, retry_backoff: float = 0.8):
        """``resource_manager_url`` without a trailing slash; ``retry_backoff``: the retry policy's backoff factor."""
        from azure.core.pipeline import Pipeline, policies
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

        self._base = resource_manager_url
        self._pipeline = Pipeline(
            transport,
            [
                policies.RequestIdPolicy(),
                policies.UserAgentPolicy(sdk_moniker=USER_AGENT),
                policies.RetryPolicy(retry_backoff_factor=retry_backoff, retry_backoff_max=60),
                ARMChallengeAuthenticationPolicy(credential, resource_manager_url + "/.default"),
            ],
        )
        self._errors = _error_map()

    def get(self, arm_path: str, api_version: str) -> dict:
        """The JSON body of ``GET {arm_path}?api-version=...``."""
        return self._get(f"{self._base}{arm_path}?api-version={api_version}")

    def list(self, arm_path: str, api_version: str) -> Iterator[dict]:
        """The items of a list call (``value``), page after page as ``nextLink`` says."""
        url: str | None = f"{self._base}{arm_path}?api-version={api_version}"
        while url:
            body = self._get(url)
            yield from body.get("value") or ()
            url = body.get("nextLink") or None

    def _get(self, url: str) -> dict:
        from azure.core.rest import HttpRequest

        response = self._pipeline.run(HttpRequest("GET", url, headers={"Accept": "application/json"})).http_response
        if response.status_code != 200:
            self._raise(response)
        return response.json()

    def _raise(self, response: Any) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.core.exceptions import ARMErrorFormat

        error = self._errors.get(response.status_code)
        if error is not None:
            raise error(response=response)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)

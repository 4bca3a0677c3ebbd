"""rest.ArmReader on http.ArmTransport against the local HTTPS server: pages, errors, retries, proxies, CA bundle."""

from __future__ import annotations

import socket
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError, ServiceRequestError
from servers.azure import FakeAzure
from servers.azure import plugin_params as params

from airflow_cloudmarker.azure import arm, http, rest

VMS = "/providers/Microsoft.Compute/virtualMachines"


@pytest.fixture
def azure(tmp_path, monkeypatch):
    with FakeAzure(tmp_path / "ca", subscriptions=1, vms=3, page_size=2) as az:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield az


def settings_for(az: FakeAzure) -> arm.AzureSettings:
    return arm.settings(**{"plugin": "Test", "conn_id": None, **params(az)})


def reader_for(az: FakeAzure, credential: object = None) -> tuple[rest.ArmReader, arm.CallCounter]:
    """A reader with its own pools (so they read the environment as it is now) and its own counter."""
    s = settings_for(az)
    counter = arm.CallCounter()
    transport = http.arm_transport(http.ArmConnections(4), counter)
    credential = credential or arm.authenticate(s)
    return rest.ArmReader(s.resource_manager_url, credential, transport, s.retry_backoff), counter


def subscription_path(az: FakeAzure) -> str:
    return rest.path("subscriptions", next(iter(az.subs)))


def test_a_list_follows_next_link_and_counts_each_page(azure):
    reader, counter = reader_for(azure)
    vms = list(reader.list(subscription_path(azure) + VMS, "2026-04-01"))
    assert [vm["name"] for vm in vms] == ["vm-0-0", "vm-0-1", "vm-0-2"]
    assert vms[0]["properties"]["hardwareProfile"] == {"vmSize": "Standard_B1s"}  # ARM's JSON as it came
    assert counter.calls == 2  # the second page through nextLink
    sub = reader.get(subscription_path(azure), rest.SUBSCRIPTIONS_API)
    assert sub["displayName"] == "Subscription 0"


def test_errors_are_the_sdks_errors(azure):
    reader, counter = reader_for(azure)
    sub = subscription_path(azure)
    with pytest.raises(ResourceNotFoundError):
        reader.get(sub + "/resourceGroups/nothing-here", "2025-04-01")
    azure.fail[f"^{sub}/providers/Microsoft.DBforMySQL/flexibleServers$"] = 409
    with pytest.raises(ResourceExistsError) as unregistered:
        list(reader.list(sub + "/providers/Microsoft.DBforMySQL/flexibleServers", "2024-12-30"))
    assert arm.error_code(unregistered.value) == arm.UNREGISTERED
    azure.fail[f"^{sub}$"] = 403
    with pytest.raises(HttpResponseError, match="AuthorizationFailed") as forbidden:
        reader.get(sub, rest.SUBSCRIPTIONS_API)
    assert forbidden.value.error.code == "AuthorizationFailed"
    assert counter.calls == 3  # none of them retried


def test_a_5xx_is_retried_and_each_try_counted(azure):
    reader, counter = reader_for(azure)
    sub = subscription_path(azure)
    azure.fail[f"^{sub}$"] = 500
    with pytest.raises(HttpResponseError, match="InternalServerError"):
        reader.get(sub, rest.SUBSCRIPTIONS_API)
    assert counter.calls == 4  # the first try and azure-core's 3 retries


def test_a_throttled_call_waits_out_retry_after(azure):
    reader, counter = reader_for(azure)
    sub = subscription_path(azure)
    azure.throttle[f"^{sub}$"] = 1
    started = time.monotonic()
    assert reader.get(sub, rest.SUBSCRIPTIONS_API)["state"] == "Enabled"
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert (counter.calls, counter.throttled) == (2, 1)


def test_the_proxy_from_the_environment_is_used_unless_no_proxy_says_otherwise(azure, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("HTTPS_PROXY", dead_proxy)
    credential = arm.authenticate(settings_for(azure))  # NO_PROXY names 127.0.0.1: straight to the server
    reader, _ = reader_for(azure, credential)
    assert reader.get(subscription_path(azure), rest.SUBSCRIPTIONS_API)["state"] == "Enabled"
    monkeypatch.delenv("NO_PROXY")
    reader, _ = reader_for(azure, credential)
    with pytest.raises(ServiceRequestError):  # through the dead proxy (after azure-core's retries)
        reader.get(subscription_path(azure), rest.SUBSCRIPTIONS_API)


def test_the_ca_bundle_from_the_environment_is_trusted_and_nothing_else(azure, monkeypatch):
    credential = arm.authenticate(settings_for(azure))  # its token is kept: no more login calls
    trusting, _ = reader_for(azure, credential)
    assert trusting.get(subscription_path(azure), rest.SUBSCRIPTIONS_API)["state"] == "Enabled"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    untrusting, _ = reader_for(azure, credential)  # certifi's bundle does not know the test CA
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get(subscription_path(azure), rest.SUBSCRIPTIONS_API)


@pytest.mark.parametrize(
    ("header", "charset"),
    [
        ("application/json; charset=utf-8", "utf-8"),
        ('text/plain; Charset="latin-1"', "latin-1"),
        ("x", None),
        (None, None),
    ],
)
def test_the_charset_of_a_content_type(header, charset):
    assert http.charset(header) == charset

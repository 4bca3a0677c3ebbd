"""The four web app events on AzWebApp's web_app_config records."""

from __future__ import annotations

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker.events.azwebappclientcertevent import AzWebAppClientCertEvent
from airflow_cloudmarker.events.azwebapphttp20event import AzWebAppHttp20Event
from airflow_cloudmarker.events.azwebapphttpsevent import AzWebAppHttpsEvent
from airflow_cloudmarker.events.azwebapptlsevent import AzWebAppTLSEvent

SITE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/app1"

FLAGS = [
    (AzWebAppClientCertEvent, "client_cert_enabled", "web_app_client_certificate_event", "client certificates"),
    (AzWebAppHttp20Event, "http20_enabled", "web_app_http20_event", "HTTP 2.0"),
    (AzWebAppHttpsEvent, "https_only", "web_app_https_event", "HTTPS-only traffic"),
]


def config(**ext):
    """A web_app_config record: com has no record_type, as in the original."""
    return record("web_app_config", None, reference=SITE, **ext)


@pytest.mark.parametrize(("cls", "field", "event_type", "words"), FLAGS)
@pytest.mark.parametrize(("value", "count"), [(True, 0), (False, 1), (None, 1), ("", 1), ("yes", 0)])
def test_flag_events_fire_when_the_flag_is_not_set(cls, field, event_type, words, value, count):
    assert len(events(cls(), config(**{field: value}))) == count


@pytest.mark.parametrize(("cls", "field", "event_type", "words"), FLAGS)
def test_flag_event_shape_and_texts(cls, field, event_type, words):
    source = config(**{field: False}, min_tls_version="1.2")
    event = only_event(cls(), source)
    assert_event_shape(event, source, event_type, cls.CHECK)
    assert event["com"]["description"].startswith(f"Azure web app {SITE} has {words}")
    assert event["ext"]["min_tls_version"] == "1.2"
    assert len(events(cls(), config())) == 1  # missing counts as not set, as in the original
    assert events(cls(), record("web_apps", None, **{field: False})) == []  # AzCloud's listing record
    assert_ignores_malformed(cls(), source)


@pytest.mark.parametrize(
    ("version", "minimum", "count"),
    [("1.0", 1.2, 1), ("1.1", 1.2, 1), ("1.2", 1.2, 0), ("1.3", 1.2, 0), ("1.2", 1.3, 1), (1.0, 1.2, 1), (1, 1.2, 1)],
)
def test_tls_version_below_the_minimum(version, minimum, count):
    assert len(events(AzWebAppTLSEvent(_min_tls_version=minimum), config(min_tls_version=version))) == count


@pytest.mark.parametrize("version", [None, "abc", "", "nan", "inf", True, ["1.0"], {"v": 1}])
def test_tls_event_ignores_a_missing_or_non_numeric_version(version):
    ext = {} if version is None else {"min_tls_version": version}
    assert events(AzWebAppTLSEvent(), config(**ext)) == []  # the original raised TypeError or ValueError


def test_tls_event_shape_and_texts():
    source = config(min_tls_version="1.0")
    event = only_event(AzWebAppTLSEvent(), source)
    assert_event_shape(event, source, "web_app_tls_event", AzWebAppTLSEvent.CHECK)
    assert event["com"]["description"] == (
        f"Azure web app {SITE} accepts TLS 1.0, older than the minimum TLS version 1.2."
    )
    assert event["com"]["recommendation"] == f"Set the minimum TLS version of web app {SITE} to 1.2 or later."
    assert_ignores_malformed(AzWebAppTLSEvent(), source)


@pytest.mark.parametrize("value", ["1.2", "abc", None, True, -1])
def test_a_non_numeric_minimum_tls_version_fails_at_construction(value):
    with pytest.raises(ValueError, match="AzWebAppTLSEvent param _min_tls_version must be a number"):
        AzWebAppTLSEvent(_min_tls_version=value)

"""The four log-profile events on AzMonitor records: no profile, missing categories and locations, retention."""

from __future__ import annotations

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker import findings
from airflow_cloudmarker.events.azlogprofileevent import AzLogProfileEvent
from airflow_cloudmarker.events.azlogprofilemissingcategoryevent import AzLogProfileMissingCategoryEvent
from airflow_cloudmarker.events.azlogprofilemissinglocationevent import AzLogProfileMissingLocationEvent
from airflow_cloudmarker.events.azlogprofileretentionevent import AzLogProfileRetentionEvent

PROFILE = "/subscriptions/s1/providers/microsoft.insights/logprofiles/default"


def profile(raw=None, **ext):
    """A log_profile record as AzMonitor emits it (ext and com record types both log_profile)."""
    return record("log_profile", "log_profile", raw=raw, reference=PROFILE, **ext)


# -- no log profile --------------------------------------------------------------------------------


def test_a_subscription_without_a_log_profile_is_reported():
    source = record("log_profile_missing", "log_profile_missing", reference="/subscriptions/s1")
    event = only_event(AzLogProfileEvent(), source)
    assert_event_shape(event, source, "log_profile_event", AzLogProfileEvent.CHECK)
    assert event["com"]["description"] == (
        "Azure subscription /subscriptions/s1 has no log profile, so its activity log is not exported."
    )
    assert "diagnostic setting" in event["com"]["recommendation"]
    assert AzLogProfileEvent.CHECK.controls == {}  # log profiles are retired: no current CIS control
    assert events(AzLogProfileEvent(), profile(raw={"categories": []})) == []
    assert_ignores_malformed(AzLogProfileEvent(), source)


# -- categories ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "missing"),
    [
        ({"categories": []}, ["Write", "Delete", "Action"]),
        ({"categories": ["Write", "Delete"]}, ["Action"]),
        ({"categories": ["Action", "Delete", "Write"]}, None),
        ({"properties": {"categories": ["Write"]}}, ["Delete", "Action"]),  # the ARM wire shape
        ({"categories": ["Write", 7, None, "Delete"]}, ["Action"]),  # odd items are skipped
        ({"categories": ["write", "delete", "action"]}, ["Write", "Delete", "Action"]),  # exact names, as the original
    ],
)
def test_missing_categories(raw, missing):
    found = events(AzLogProfileMissingCategoryEvent(), profile(raw=raw))
    if missing is None:
        assert found == []
        return
    (event,) = found
    assert event["com"]["finding_key"] == ",".join(missing)
    assert event["com"]["reference"] == PROFILE
    assert ", ".join(missing).rpartition(", ")[2] in event["com"]["description"]


def test_missing_category_event_shape_and_texts():
    source = profile(raw={"categories": ["Write"]})
    event = only_event(AzLogProfileMissingCategoryEvent(severity="medium"), source)
    assert_event_shape(
        event, source, "log_profile_missing_category_event", AzLogProfileMissingCategoryEvent.CHECK, "medium"
    )
    assert (
        event["com"]["description"] == f"Azure log profile {PROFILE} does not include the categories Delete and Action."
    )
    assert "Add the categories Delete and Action" in event["com"]["recommendation"]


@pytest.mark.parametrize(
    "raw",
    [None, {}, {"categories": None}, {"categories": "Write"}, {"categories": {"Write": True}}, "raw", ["Write"]],
)
def test_missing_categories_ignores_a_raw_it_cannot_read(raw):
    rec = profile(raw={"categories": []})
    rec["raw"] = raw
    assert events(AzLogProfileMissingCategoryEvent(), rec) == []


def test_missing_categories_keys_on_com_record_type():
    rec = profile(raw={"categories": []})
    rec["com"]["record_type"] = "log_profile_missing"
    assert events(AzLogProfileMissingCategoryEvent(), rec) == []
    rec = profile(raw={"categories": []})
    rec["ext"]["record_type"] = "something_else"  # the original checked com only
    assert len(events(AzLogProfileMissingCategoryEvent(), rec)) == 1
    assert_ignores_malformed(AzLogProfileMissingCategoryEvent(), profile(raw={"categories": []}))


# -- locations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription_locations", "locations", "missing"),
    [
        ([], [], ["global"]),  # the original's test: global is always wanted
        ([], ["global"], None),
        (["loc_1, loc_2"], ["global", "loc_1"], ["loc_1, loc_2"]),  # one string, as the original's test has it
        (["westeurope", "eastus"], ["global"], ["eastus", "westeurope"]),
        (["westeurope", "eastus"], ["eastus", "global", "westeurope", "northeurope"], None),
        (["westeurope", 3], ["westeurope", None], ["global"]),  # odd items are skipped
    ],
)
def test_missing_locations(subscription_locations, locations, missing):
    rec = profile(subscription_locations=subscription_locations, locations=locations)
    found = events(AzLogProfileMissingLocationEvent(), rec)
    if missing is None:
        assert found == []
        return
    (event,) = found
    assert event["ext"]["missing_locations"] == missing
    assert event["com"]["finding_key"] == ",".join(missing)


def test_missing_location_event_shape_and_a_stable_finding():
    source = profile(subscription_locations=["westeurope", "eastus"], locations=[])
    event = only_event(AzLogProfileMissingLocationEvent(), source)
    assert_event_shape(event, source, "log_profile_missing_location_event", AzLogProfileMissingLocationEvent.CHECK)
    assert event["com"]["description"] == (
        f"Azure log profile {PROFILE} does not include the locations eastus, global, and westeurope."
    )
    reordered = profile(subscription_locations=["eastus", "westeurope"], locations=[])
    assert findings.finding_id(only_event(AzLogProfileMissingLocationEvent(), reordered)) == findings.finding_id(event)
    fewer = profile(subscription_locations=["eastus"], locations=[])
    assert findings.finding_id(only_event(AzLogProfileMissingLocationEvent(), fewer)) != findings.finding_id(event)


@pytest.mark.parametrize(
    "ext",
    [
        {"locations": ["global"]},  # the original raised TypeError on a missing list
        {"subscription_locations": ["eastus"]},
        {"subscription_locations": "eastus", "locations": []},
        {"subscription_locations": ["eastus"], "locations": None},
        {"subscription_locations": {"eastus": 1}, "locations": []},
    ],
)
def test_missing_locations_ignores_malformed_lists(ext):
    assert events(AzLogProfileMissingLocationEvent(), profile(**ext)) == []


def test_missing_locations_ignores_other_records():
    good = profile(subscription_locations=["eastus"], locations=[])
    assert_ignores_malformed(AzLogProfileMissingLocationEvent(), good)
    other = record("log_profile_missing", "log_profile_missing", subscription_locations=["eastus"], locations=[])
    assert events(AzLogProfileMissingLocationEvent(), other) == []


# -- retention -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "days", "minimum", "count"),
    [
        (True, 365, 365, 0),
        (True, 364, 365, 1),
        (True, 400, 365, 0),
        (True, 0, 365, 1),
        (False, 0, 365, 0),  # disabled with 0 days: kept forever
        (False, 30, 365, 1),  # disabled with days set: the original flags it
        (True, 365, 730, 1),
        (True, 30, 30, 0),
    ],
)
def test_retention(enabled, days, minimum, count):
    rec = profile(retention_enabled=enabled, retention_days=days)
    assert len(events(AzLogProfileRetentionEvent(_min_retention_days=minimum), rec)) == count


def test_retention_event_shape_and_texts():
    source = profile(retention_enabled=True, retention_days=90)
    event = only_event(AzLogProfileRetentionEvent(), source)
    assert_event_shape(event, source, "log_profile_retention_event", AzLogProfileRetentionEvent.CHECK)
    assert event["com"]["description"] == (
        f"Azure log profile {PROFILE} does not keep activity logs for at least 365 days (retention enabled, 90 days)."
    )
    assert "at least 365 days" in event["com"]["recommendation"]
    assert_ignores_malformed(AzLogProfileRetentionEvent(), source)


@pytest.mark.parametrize(
    "ext",
    [
        {},  # the original raised KeyError
        {"retention_enabled": True},
        {"retention_days": 10},
        {"retention_enabled": True, "retention_days": "10"},
        {"retention_enabled": True, "retention_days": None},
        {"retention_enabled": "yes", "retention_days": 10},
        {"retention_enabled": True, "retention_days": True},
    ],
)
def test_retention_ignores_malformed_fields(ext):
    assert events(AzLogProfileRetentionEvent(), profile(**ext)) == []


@pytest.mark.parametrize("value", ["365", -1, True, None, [365]])
def test_a_bad_minimum_retention_fails_at_construction(value):
    with pytest.raises(ValueError, match="AzLogProfileRetentionEvent param _min_retention_days must be a number"):
        AzLogProfileRetentionEvent(_min_retention_days=value)

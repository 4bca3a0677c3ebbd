"""The Key Vault events on AzKV records: keys and secrets without expiry, vaults that are not recoverable."""

from __future__ import annotations

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker.events.azkvkeynoexpiryevent import AzKVKeyNoExpiryEvent
from airflow_cloudmarker.events.azkvnonrecoverableevent import AzKVNonRecoverableEvent
from airflow_cloudmarker.events.azkvsecretnoexpiryevent import AzKVSecretNoExpiryEvent

EXPIRY = [
    (AzKVKeyNoExpiryEvent, "key_vault_key", "key_vault_key_no_expiry_event"),
    (AzKVSecretNoExpiryEvent, "key_vault_secret", "key_vault_secret_no_expiry_event"),
]


@pytest.mark.parametrize(("cls", "ext_type", "event_type"), EXPIRY)
@pytest.mark.parametrize(
    ("enabled", "expiry_set", "count"),
    [
        (False, False, 0),  # disabled, no expiry: cannot be used
        (False, True, 0),
        (True, True, 0),
        (True, False, 1),
        (None, False, 0),  # enabled unknown: the original's truthiness
        (True, None, 0),  # expiry unknown: only exactly False is an event
        (True, "no", 0),
    ],
)
def test_expiry_events_follow_the_original_condition(cls, ext_type, event_type, enabled, expiry_set, count):
    assert len(events(cls(), record(ext_type, ext_type, enabled=enabled, expiry_set=expiry_set))) == count


@pytest.mark.parametrize(("cls", "ext_type", "event_type"), EXPIRY)
def test_expiry_event_shape_and_texts(cls, ext_type, event_type):
    source = record(ext_type, ext_type, enabled=True, expiry_set=False, reference="https://v1.vault.azure.net/keys/k1")
    event = only_event(cls(), source)
    assert_event_shape(event, source, event_type, cls.CHECK)
    item = ext_type.rpartition("_")[2]
    assert event["com"]["description"] == (
        f"Azure Key Vault {item} https://v1.vault.azure.net/keys/k1 is enabled and has no expiration date."
    )
    assert "set an expiration date" in event["com"]["recommendation"]
    assert "finding_key" not in event["com"]  # one finding per key or secret: its reference tells it apart
    assert only_event(cls(severity="high"), source)["com"]["severity"] == "high"


@pytest.mark.parametrize(("cls", "ext_type", "event_type"), EXPIRY)
def test_expiry_events_ignore_other_types_and_malformed_records(cls, ext_type, event_type):
    bad = record(ext_type, ext_type, enabled=True, expiry_set=False)
    assert events(cls(), record("key_vault", "key_vault", enabled=True, expiry_set=False)) == []
    other = "key_vault_secret" if ext_type == "key_vault_key" else "key_vault_key"
    assert events(cls(), record(other, other, enabled=True, expiry_set=False)) == []
    assert_ignores_malformed(cls(), bad)


@pytest.mark.parametrize(
    ("ext", "count"),
    [
        ({"recoverable": True}, 0),
        ({"recoverable": False}, 1),
        ({}, 1),  # missing counts as not recoverable, as in the original
        ({"recoverable": None}, 1),
        ({"recoverable": False, "enable_soft_delete": True, "enable_purge_protection": False}, 1),
    ],
)
def test_non_recoverable_vault(ext, count):
    assert len(events(AzKVNonRecoverableEvent(), record("key_vault", "key_vault", **ext))) == count


def test_non_recoverable_event_shape_speaks_of_purge_protection():
    source = record("key_vault", "key_vault", recoverable=False, enable_soft_delete=True)
    event = only_event(AzKVNonRecoverableEvent(), source)
    assert_event_shape(event, source, "key_vault_non_recoverable_event", AzKVNonRecoverableEvent.CHECK)
    assert event["ext"]["enable_soft_delete"] is True  # the source ext is kept
    assert "purge protection" in event["com"]["description"] and "purge protection" in event["com"]["title"]
    assert "Enable purge protection" in event["com"]["recommendation"]
    assert events(AzKVNonRecoverableEvent(), record("key_vault_key", "key_vault_key", recoverable=False)) == []
    assert_ignores_malformed(AzKVNonRecoverableEvent(), source)


def test_a_bad_severity_fails_at_construction_naming_the_plugin():
    with pytest.raises(ValueError, match="AzKVNonRecoverableEvent param severity must be one of"):
        AzKVNonRecoverableEvent(severity="urgent")

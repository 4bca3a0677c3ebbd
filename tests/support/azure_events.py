"""Build Azure records as the cloud plugins (ours and the original's) emit them, and judge an event plugin's output.

``record(ext_type, com_type, **ext)`` makes the minimal record of the original's unit tests;
``malformed(record)`` gives the variants that must give no event (what the original crashed on or
ignored); ``only_event(plugin, record)`` runs the plugin and returns its one event.
"""

from __future__ import annotations

import copy

REF = "/subscriptions/s1/resourceGroups/rg/providers/x/y/name1"


def record(ext_type=None, com_type=None, *, raw=None, cloud="azure", reference=REF, **ext):
    """A record with ``ext.record_type``/``com.record_type`` (when given), the ext fields and ``raw``."""
    com = {"cloud_type": cloud, "reference": reference}
    if com_type is not None:
        com["record_type"] = com_type
    rec = {"ext": {"cloud_type": cloud, **({"record_type": ext_type} if ext_type else {}), **ext}, "com": com}
    if raw is not None:
        rec["raw"] = raw
    return rec


def events(plugin, rec):
    """The plugin's events for one record, as a list."""
    return list(plugin.eval(rec) or [])


def only_event(plugin, rec):
    """The plugin's one event for ``rec`` (fails when there are none or several)."""
    (event,) = events(plugin, rec)
    return event


def _with(rec, bucket, value):
    changed = copy.deepcopy(rec)
    changed[bucket] = value
    return changed


def _without(rec, bucket):
    changed = copy.deepcopy(rec)
    changed.pop(bucket, None)
    return changed


def malformed(rec, cloud_optional=False):
    """Variants of a record that gives an event, each of which must give none.

    Not a dict; ``com`` None, a string, a list or missing; ``ext`` None or a string; another cloud
    (and, unless the event accepts a record without one, no cloud type).
    """
    other_cloud = _with(rec, "com", {**rec["com"], "cloud_type": "gcp"})
    no_cloud = _with(rec, "com", {k: v for k, v in rec["com"].items() if k != "cloud_type"})
    variants = {
        "not a dict": "a string",
        "a list": [rec],
        "com None": _with(rec, "com", None),
        "com a string": _with(rec, "com", "azure"),
        "com a list": _with(rec, "com", [rec["com"]]),
        "no com": _without(rec, "com"),
        "ext None": _with(rec, "ext", None),
        "ext a string": _with(rec, "ext", "vm"),
        "other cloud": other_cloud,
    }
    if not cloud_optional:
        variants["no cloud type"] = no_cloud
    return variants


def assert_ignores_malformed(plugin, rec, cloud_optional=False):
    """Every malformed variant of ``rec`` gives no event and raises nothing."""
    assert events(plugin, rec), "the base record must give an event"
    for name, variant in malformed(rec, cloud_optional).items():
        assert events(plugin, variant) == [], name


def assert_event_shape(event, source, event_type, check, severity=None):
    """The event keeps the source ext retyped and carries the check in com, as every Azure event does."""
    assert event["ext"] == {**source["ext"], **event["ext"], "record_type": event_type}
    assert {k: v for k, v in source["ext"].items() if k != "record_type"}.items() <= event["ext"].items()
    com = event["com"]
    assert com["cloud_type"] == source["com"].get("cloud_type", "azure")
    assert com["record_type"] == event_type
    assert com["reference"] == source["com"]["reference"]
    assert com["check_id"] == check.check_id and com["title"] == check.title
    assert com["severity"] == (severity or check.severity)
    for text in (com["description"], com["recommendation"]):
        assert text and "{" not in text and "None" not in text
    assert source["com"]["reference"] in com["description"]
    assert "raw" not in event

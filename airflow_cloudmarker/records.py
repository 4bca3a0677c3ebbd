"""Record stamping and JSON encoding.

A record is a dict with three buckets: ``raw`` (the cloud object as the API returned it),
``ext`` (cloud-specific metadata) and ``com`` (metadata common to all clouds). The framework
stamps ``com`` with where a record came from and, for the copy a store or alert receives,
where it goes; dashboards query these names (``com.record_type=mock_event``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
from collections.abc import Mapping
from typing import Any

import orjson

AUDIT_VERSION_FORMAT = "%Y%m%d_%H%M%S"


def audit_version(when: dt.datetime) -> str:
    """One UTC ``%Y%m%d_%H%M%S`` string per audit run, the same in every task of the run."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime(AUDIT_VERSION_FORMAT)


def worker_name(audit_key: str, plugin_key: str) -> str:
    """``<audit>_<plugin key>``: names the origin of records and FileStore's output files."""
    return f"{audit_key}_{plugin_key}"


def origin_stamp(audit_key: str, version: str, plugin_key: str, plugin_class: str, origin_type: str) -> dict:
    """The ``com`` fields of a record emitted by a cloud (``origin_type='cloud'``) or event plugin."""
    return {
        "audit_key": audit_key,
        "audit_version": version,
        "origin_key": plugin_key,
        "origin_class": plugin_class,
        "origin_worker": worker_name(audit_key, plugin_key),
        "origin_type": origin_type,
    }


def target_stamp(audit_key: str, plugin_key: str, plugin_class: str, target_type: str) -> dict:
    """The ``com`` fields of the copy a store (``target_type='store'``) or alert plugin receives."""
    return {
        "target_key": plugin_key,
        "target_class": plugin_class,
        "target_worker": worker_name(audit_key, plugin_key),
        "target_type": target_type,
    }


def stamp(record: dict, fields: Mapping[str, Any]) -> dict:
    """Add ``fields`` to ``record['com']`` (created when missing) and return the record."""
    com = record.get("com")
    if isinstance(com, dict):
        com.update(fields)
    else:
        record["com"] = dict(fields)
    return record


def json_default(value: Any) -> Any:
    """Encode what orjson cannot: cloud SDK values must become JSON, never be dropped."""
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    as_dict = getattr(value, "as_dict", None)  # Azure SDK models
    if callable(as_dict):
        return as_dict()
    return str(value)


_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any, indent: bool = False) -> bytes:
    """JSON-encode records; datetimes become ISO 8601 strings, unknown objects their ``str()``."""
    return orjson.dumps(value, default=json_default, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def jsonable(record: Any) -> Any:
    """Return ``record`` as plain JSON types (what a store or XCom can keep)."""
    return orjson.loads(dumps(record))

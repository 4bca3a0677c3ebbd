"""What the network stores share: one encoding of a record, its deterministic id, one error type.

Why deterministic ids: a store task that is retried, or a run that is cleared and run again,
sends the same records a second time. With an id derived from the record itself (which carries
its audit run: ``com.audit_key`` and ``com.audit_version``), Elasticsearch and MongoDB overwrite
the earlier copy instead of adding a duplicate. Two runs differ in ``audit_version``, so each
run keeps its own documents, as the original Cloudmarker did.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from airflow_cloudmarker import records as rec

#: Sorted keys: the same record always encodes to the same bytes, whatever order its dict keys have.
_FAST = orjson.OPT_SORT_KEYS
#: Non-string keys and numpy values cost twice the time on every record; only the rare record needs them.
_FULL = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS


def encode(record: Any) -> bytes:
    """The record as compact JSON with sorted keys (the bytes its id is computed from)."""
    try:
        return orjson.dumps(record, option=_FAST)
    except TypeError:  # datetimes are native; SDK objects, sets, non-str keys take the full path
        return orjson.dumps(record, default=rec.json_default, option=_FULL)


def document_id(encoded: bytes) -> str:
    """A 32-hex-digit id for an encoded record: the same record of the same run, the same id.

    Byte-identical records of one run share one id (they are indistinguishable copies).
    """
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def encode_with_id(record: Any) -> tuple[str, bytes]:
    """``(id, JSON bytes)`` of a record."""
    encoded = encode(record)
    return document_id(encoded), encoded


class StoreError(Exception):
    """A store could not deliver records; the message names the store, the server and the count.

    Raised after the client's own retries, so the task fails loudly (and Airflow may retry it;
    thanks to deterministic ids a retry overwrites what already arrived).
    """

    def __init__(self, store: str, server: str, reason: str, not_written: int | None = None, total: int | None = None):
        self.store = store
        self.server = server
        self.not_written = not_written
        count = ""
        if not_written is not None:
            count = f"{not_written} of {total} records were not written" if total else f"{not_written} records"
            count += "; "
        super().__init__(f"{store} -> {server}: {count}{reason}")


class StoreAuthError(StoreError):
    """The server refused the credentials: one clear message, no retries, no traceback soup."""


def positive_int(store: str, name: str, value: Any) -> int:
    """Check a size param at construction (before any network), with the fix in the message."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{store} param {name} must be a positive integer, not {value!r}; fix the {name} param")
    return value

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Mapping

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


#: orjson options of ``dumps``, for a hot loop that calls orjson itself and ``dumps`` only when orjson refuses.
DUMPS_OPTIONS = _OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any, indent: bool = False) -> bytes:
    """JSON-encode records; datetimes become ISO 8601 strings, unknown objects their ``str()``."""
    return orjson.dumps(value, default=json_default, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))


def loads(data: bytes | str) -> Any:
    """Decode JSON that :func:`dumps` wrote (orjson: several times faster than the standard library)."""
    return orjson.loads(data)


#: Raised by ``dumps`` for a value JSON cannot carry (a ``TypeError``); ``repair`` fixes such a value.
JSONEncodeError = orjson.JSONEncodeError
#: A repaired record nests at most this many levels of dicts and lists; deeper parts become their
#: JSON text. orjson refuses more than 254 levels; 64 leaves room for the stores that wrap a record
#: (Splunk HEC's event envelope) and for MongoDB, which refuses documents nested over 100 levels.
MAX_DEPTH = 64
CIRCULAR_MARKER = "<circular reference>"
_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson encodes as a JSON number
_PATH_SEGMENT_CHARS = 40


def shape_problem(record: Any) -> str | None:
    """Why ``record`` is not a record, or None: a record is a dict whose ``com`` and ``ext`` are dicts when set.

    The framework stamps ``com`` and event plugins read ``com`` and ``ext`` with ``.get()``: a record
    of another shape would fail the task that meets it, so the task skips it instead.
    """
    if type(record) is dict:  # the fast path of every record: exact types, no loop
        com, ext = record.get("com"), record.get("ext")
        if (com is None or type(com) is dict) and (ext is None or type(ext) is dict):
            return None
    if not isinstance(record, dict):
        return f"is a {type(record).__name__}, not a dict"
    for bucket in ("com", "ext"):
        value = record.get(bucket)
        if value is not None and not isinstance(value, dict):
            return f"has a {bucket!r} that is a {type(value).__name__}, not a dict"
    return None


@dataclass
class Repairs:
    """What ``repair`` changed in one value: how many fields, and the first one (its path and the change)."""

    count: int = 0
    first: str = ""

    def note(self, path: tuple[str, ...], change: str) -> None:
        """Count one repaired value; the first one's field path and change are kept for the warning."""
        self.count += 1
        if not self.first:
            self.first = f"{format_path(path)}: {change}"


def format_path(path: tuple[str, ...], keep: int = 4) -> str:
    """``raw.tags[2].name`` from its segments; a deep path keeps its first and last ``keep`` segments."""
    if len(path) > 2 * keep + 1:
        path = (*path[:keep], f"...({len(path) - 2 * keep} levels)...", *path[-keep:])
    return "".join(path).lstrip(".") or "(the whole record)"


def repair(value: Any) -> tuple[Any, Repairs]:
    r"""Return a copy of ``value`` that JSON can carry, and what was changed.

    Only for a value ``dumps`` refused (clean records never come here, so encoding stays fast).
    Strings with surrogates (a lone ``"\\ud800"`` from a JSON decoder) get U+FFFD in their place,
    integers beyond 64 bits become their decimal string, dicts and lists nested deeper than
    ``MAX_DEPTH`` levels become their JSON text (a string: nothing is lost), a circular reference
    becomes ``CIRCULAR_MARKER``, and a dict key or object neither orjson nor ``json_default`` can
    encode becomes its ``str()``.
    """
    repairs = Repairs()
    return _repair(value, (), 1, set(), repairs), repairs


def _segment(key: Any, index: bool = False) -> str:
    text = str(key)
    if len(text) > _PATH_SEGMENT_CHARS:
        text = text[:_PATH_SEGMENT_CHARS] + "..."
    return f"[{text}]" if index else f".{text}"


def _fixed_str(value: str, path: tuple[str, ...], repairs: Repairs) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        repairs.note(path, "surrogates replaced with U+FFFD")
        # UTF-16 joins a valid surrogate pair into its character; "replace" turns a lone one into U+FFFD.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return str(value)


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts to decimal (sys.get_int_max_str_digits)
        return hex(value)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unencodable {type(value).__name__}>"


def _repair_key(key: Any, path: tuple[str, ...], repairs: Repairs) -> Any:
    if isinstance(key, str):
        probe = Repairs()
        fixed = _fixed_str(key, (), probe)
        if probe.count:
            repairs.note((*path, _segment(fixed)), "surrogates in the key replaced with U+FFFD")
        return fixed
    if isinstance(key, int) and not isinstance(key, bool) and not _INT_RANGE[0] <= key <= _INT_RANGE[1]:
        repairs.note((*path, _segment(_int_text(key))), "integer key beyond 64 bits stored as a string")
        return _int_text(key)
    try:
        orjson.dumps({key: None}, option=_OPTIONS)
    except JSONEncodeError:
        text = _fixed_str(_safe_str(key), (), Repairs())
        repairs.note((*path, _segment(text)), f"key of type {type(key).__name__} stored as its str()")
        return text
    return key


def _repair(value: Any, path: tuple[str, ...], depth: int, active: set[int], repairs: Repairs) -> Any:
    if isinstance(value, str):
        return _fixed_str(value, path, repairs)
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            return value
        repairs.note(path, "integer beyond 64 bits stored as a string")
        return _int_text(value)
    if isinstance(value, (dict, list, tuple)):
        return _repair_container(value, path, depth, active, repairs)
    return _repair_object(value, path, depth, active, repairs)


def _repair_container(value: Any, path: tuple[str, ...], depth: int, active: set[int], repairs: Repairs) -> Any:
    """A dict, list or tuple: its items repaired (a dict's keys too), unless it is circular or too deep."""
    if id(value) in active:
        repairs.note(path, "circular reference replaced with the string " + repr(CIRCULAR_MARKER))
        return CIRCULAR_MARKER
    if depth > MAX_DEPTH:
        repairs.note(path, f"nested deeper than {MAX_DEPTH} levels: stored as its JSON text")
        return json_text(value)
    active.add(id(value))
    try:
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                fixed = _repair_key(key, path, repairs)
                result[fixed] = _repair(item, (*path, _segment(fixed)), depth + 1, active, repairs)
            return result
        return [_repair(item, (*path, _segment(i, True)), depth + 1, active, repairs) for i, item in enumerate(value)]
    finally:
        active.discard(id(value))


def _repair_object(value: Any, path: tuple[str, ...], depth: int, active: set[int], repairs: Repairs) -> Any:
    """Any other object: kept when ``json_default`` encodes it, else what it converts to (repaired), else a marker."""
    if depth > MAX_DEPTH:
        repairs.note(path, f"nested deeper than {MAX_DEPTH} levels: stored as its JSON text")
        return json_text(value)
    try:
        orjson.dumps(value, default=json_default, option=_OPTIONS)  # datetimes, UUIDs, numpy, SDK models
        return value
    except JSONEncodeError:
        pass
    converted = _converted(value)
    if converted is None:
        repairs.note(path, f"{type(value).__name__} could not be encoded: stored as a marker string")
        return f"<unencodable {type(value).__name__}>"
    # What json_default made of it (a list, a dict, a str) may hold values to repair in turn.
    return _repair(converted, path, depth + 1, active, repairs)


def _converted(value: Any) -> Any:
    """``json_default(value)``, or None when it raises or gives back the same kind of object."""
    try:
        converted = json_default(value)
    except Exception:
        return None
    return None if type(converted) is type(value) and not isinstance(converted, str) else converted


def json_text(value: Any) -> str:
    """The JSON text of ``value`` however deep it nests, with ``repair``'s fixes.

    Iterative (a stack of iterators, not recursion), so a structure nested thousands of levels deep,
    which neither orjson nor Python's own recursion can walk, still becomes text.
    """
    out: list[str] = []
    stack: list[list[Any]] = []  # [iterator, closing bracket, id, is_dict, first]
    active: set[int] = set()

    def emit(item: Any, hops: int = 0) -> None:
        if isinstance(item, (dict, list, tuple)):
            if id(item) in active:
                out.append(orjson.dumps(CIRCULAR_MARKER).decode())
                return
            active.add(id(item))
            is_dict = isinstance(item, dict)
            out.append("{" if is_dict else "[")
            stack.append([iter(item.items() if is_dict else item), "}" if is_dict else "]", id(item), is_dict, True])
            return
        if item is None or isinstance(item, (str, int, float, bool)):
            out.append(dumps(_repair(item, (), 1, active, Repairs())).decode())
            return
        try:
            out.append(dumps(item).decode())
            return
        except JSONEncodeError:
            pass
        converted = _converted(item) if hops < 3 else None
        if converted is None:
            out.append(orjson.dumps(f"<unencodable {type(item).__name__}>").decode())
        else:
            emit(converted, hops + 1)

    emit(value)
    while stack:
        frame = stack[-1]
        entry = next(frame[0], _END)
        if entry is _END:
            out.append(frame[1])
            active.discard(frame[2])
            stack.pop()
            continue
        if not frame[4]:
            out.append(",")
        frame[4] = False
        if frame[3]:
            key, entry = entry
            # orjson's own text for the key as a JSON object key: b'{"k":null}' minus '{' and ':null}'.
            out.append(orjson.dumps({_repair_key(key, (), Repairs()): None}, option=_OPTIONS)[1:-6].decode() + ":")
        emit(entry)
    return "".join(out)


_END = object()


def jsonable(record: Any) -> Any:
    """Return ``record`` as plain JSON types (what a store or XCom can keep)."""
    return orjson.loads(dumps(record))

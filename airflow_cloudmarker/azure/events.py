"""What every Azure event plugin repeats: the record guard, the text helpers, the event record.

The original Cloudmarker's Azure events all follow one pattern (spec §4): read ``com`` and ``ext``,
give up unless the cloud is Azure and the record type is the one the event judges, then emit an
event whose ``ext`` is the source ``ext`` with the event's ``record_type`` and whose ``com`` has the
cloud type, the event type, the source reference and the texts. :class:`AzureEvent` is that pattern
once: a plugin declares its check, its event type and the record types it reads, and says in
``problems()`` what is wrong with one record.

Records come from our cloud plugins, from the original's stored output and from users' own clouds,
so nothing here trusts their shape: a record that is not a dict, a ``com`` or ``ext`` that is not a
dict, or a field of the wrong type gives no event and never an exception (the original crashed on
several, spec §5.2). No SDK imports: events run on plain dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_cloudmarker import util

if TYPE_CHECKING:
    from airflow_cloudmarker.contract import CheckMetadata

log = logging.getLogger(__name__)

#: Friendly names of the record types that event texts name (the clouds are util.friendly_string's).
_FRIENDLY_TYPES = {"mysql_server": "MySQL Server", "postgresql_server": "PostgreSQL Server"}


def friendly_string(text: Any) -> Any:
    """``azure`` -> ``Azure``, ``postgresql_server`` -> ``PostgreSQL Server``; other text unchanged, None stays None."""
    if text is None:
        return None
    return _FRIENDLY_TYPES.get(str(text), util.friendly_string(str(text)))


def friendly_list(items: Iterable[Any]) -> str:
    """``none``, ``a``, ``a and b``, ``a, b, and c``: a list as a sentence names it."""
    words = [str(item) for item in items]
    if not words:
        return "none"
    if len(words) <= 2:
        return " and ".join(words)
    return f"{', '.join(words[:-1])}, and {words[-1]}"


def counted(number: float, noun: str) -> str:
    """``1 day``, ``3 days``, ``2.5 days``: a number with its noun."""
    return f"{number:g} {noun}{'' if number == 1 else 's'}"


def guard(
    record: Any,
    *,
    com_type: str | None = None,
    ext_type: str | None = None,
    clouds: Sequence[str | None] = ("azure",),
) -> tuple[dict, dict] | None:
    """The record's ``(ext, com)`` when it is one an event judges, else None.

    A missing bucket counts as ``{}`` (so it fails the type checks), as in the original; one that is
    not a dict (None, a string) means the record is not ours. ``com.cloud_type`` must be one of
    ``clouds``; ``com_type`` and ``ext_type``, when given, must equal the record types.
    """
    if not isinstance(record, dict):
        return None
    com, ext = record.get("com", {}), record.get("ext", {})
    if not isinstance(com, dict) or not isinstance(ext, dict):
        return None
    if com.get("cloud_type") not in clouds:
        return None
    if com_type is not None and com.get("record_type") != com_type:
        return None
    if ext_type is not None and ext.get("record_type") != ext_type:
        return None
    return ext, com


def is_number(value: Any) -> bool:
    """True for an int or float (not a bool, which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def string_list(value: Any) -> list[str] | None:
    """The strings of a list (other items skipped), or None when ``value`` is not a list at all."""
    if not isinstance(value, (list, tuple)):
        return None
    return [item for item in value if isinstance(item, str)]


def check_number(plugin: str, name: str, value: Any, minimum: float = 0) -> Any:
    """Return a numeric param, or raise one error naming the plugin, the param and the fix."""
    if not is_number(value) or value < minimum:
        raise ValueError(
            f"{plugin} param {name} must be a number of at least {minimum:g}, not {value!r}; set it to a number"
        )
    return value


def check_names(plugin: str, name: str, value: Any) -> frozenset[str]:
    """Return a list param of names as a set (None -> empty), or raise one error naming the fix."""
    if value is None:
        return frozenset()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{plugin} param {name} must be a list of names, not {value!r}; write it as [name1, name2]")
    names = list(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ValueError(f"{plugin} param {name}: {bad!r} are not names; write each entry as a non-empty string")
    return frozenset(names)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a record: the values of the check's texts and what tells it apart.

    ``key`` becomes ``com.finding_key`` when one resource can have several findings of a check
    (which extensions, which locations), so each stays the same finding from run to run; ``ext``
    holds keys added to the event's ``ext``. ``check`` and ``event_type`` default to the plugin's.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    ext: Mapping[str, Any] = field(default_factory=dict)
    check: CheckMetadata | None = None
    event_type: str | None = None


@dataclass(frozen=True)
class Flag:
    """One field of a record that an event judges, and which values are a problem.

    The original judged flags three ways, and the difference matters for a missing field:
    ``is False`` (missing: no event), not set (falsy: missing is an event) and ``is True``.
    """

    field: str
    fails: Callable[[Any], bool]
    #: True when the field is in ``com`` rather than ``ext``.
    in_com: bool = False


def is_false(name: str, in_com: bool = False) -> Flag:
    """A problem when the field is exactly False (missing or None: unknown, no event)."""
    return Flag(name, lambda value: value is False, in_com)


def not_set(name: str) -> Flag:
    """A problem when the field is not set: False, None, missing or empty (the original's falsy test)."""
    return Flag(name, lambda value: not value)


def is_true(name: str) -> Flag:
    """A problem when the field is exactly True."""
    return Flag(name, lambda value: value is True)


def cloud_label(com: dict) -> str:
    """The friendly cloud name of a record (``Azure`` when it names none)."""
    return friendly_string(com.get("cloud_type") or "azure")


def reference_of(com: dict) -> str:
    """The source record's ``com.reference``, a resource id; ``""`` when it has none or it is not text."""
    reference = com.get("reference")
    return reference if isinstance(reference, str) else ""


class AzureEvent:
    """The shared body of the Azure event plugins: ``eval`` guards, asks ``problems()``, builds events.

    A plugin sets ``CHECK`` (its check, or the first of a tuple), ``EVENT_TYPE`` and the record
    types it reads (``COM_TYPE``, ``EXT_TYPE``; the bases below set them per kind of record), and
    either the ``FLAG`` it judges or ``problems(ext, com, record)``.
    The texts get ``{cloud}`` (``Azure``), ``{reference}`` and ``{resource}`` (the friendly
    ``ext.record_type``) besides a problem's own values.
    """

    CHECK: ClassVar[CheckMetadata | tuple[CheckMetadata, ...]]
    EVENT_TYPE: ClassVar[str]
    COM_TYPE: ClassVar[str | None] = None
    EXT_TYPE: ClassVar[str | None] = None
    CLOUDS: ClassVar[tuple[str | None, ...]] = ("azure",)
    #: What ``{resource}`` says when ``ext.record_type`` is missing.
    RESOURCE: ClassVar[str] = "resource"
    #: The one flag the default ``problems()`` judges, for the events that judge one.
    FLAG: ClassVar[Flag | None] = None

    def __init__(self, severity: str | None = None):
        name = type(self).__name__
        self._severity = None if severity is None else util.check_severity(name, severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield an event per problem of a record this plugin judges; ignore other and malformed records."""
        buckets = guard(record, com_type=self.COM_TYPE, ext_type=self.EXT_TYPE, clouds=self.CLOUDS)
        if buckets is None:
            return
        ext, com = buckets
        for problem in self.problems(ext, com, record):
            yield self.event(ext, com, problem)

    def problems(self, ext: dict, com: dict, record: dict) -> Iterable[Problem]:
        """What is wrong with one record of the right type; nothing when it is fine or malformed.

        By default: one problem when the plugin's ``FLAG`` fails.
        """
        flag = self.FLAG
        if flag is None:
            raise NotImplementedError(f"{type(self).__name__} must define FLAG or problems()")
        value = (com if flag.in_com else ext).get(flag.field)
        return [Problem()] if flag.fails(value) else []

    def event(self, ext: dict, com: dict, problem: Problem) -> dict:
        """The event record of one problem: the source ``ext`` retyped, a ``com`` with the check's fields."""
        checks = self.CHECK if isinstance(self.CHECK, tuple) else (self.CHECK,)
        check = problem.check or checks[0]
        event_type = problem.event_type or self.EVENT_TYPE
        reference = reference_of(com)
        values = {
            "cloud": cloud_label(com),
            "reference": reference or "(no id)",
            "resource": friendly_string(ext.get("record_type")) or self.RESOURCE,
            **problem.values,
        }
        event_com = {"cloud_type": com.get("cloud_type") or "azure", "record_type": event_type, "reference": reference}
        if problem.key is not None:
            event_com["finding_key"] = problem.key
        event_com.update(check.event_com(values, self._severity))
        return {"ext": util.merge_dicts(ext, {**problem.ext, "record_type": event_type}), "com": event_com}

    def ignored(self, com: dict, why: str) -> list[Problem]:
        """Log why a record of the right type cannot be judged (a malformed field) and return no problems."""
        log.warning("%s: ignoring record %s: %s", type(self).__name__, reference_of(com) or "(no reference)", why)
        return []

    def done(self) -> None:
        """Nothing to clean up."""


# -- the kinds of records the Azure cloud plugins produce (spec §2): one base per kind ------------


class LogProfileEvent(AzureEvent):
    """An event on the ``log_profile`` records of AzMonitor (the original keyed on ``com.record_type``)."""

    COM_TYPE = "log_profile"


class PostgresServerEvent(AzureEvent):
    """An event on the ``postgresql_server`` records of AzPostgres (``com.record_type: rdbms``)."""

    COM_TYPE = "rdbms"
    EXT_TYPE = "postgresql_server"


class StorageAccountEvent(AzureEvent):
    """An event on the ``storage_account_properties`` records of AzStorageAccount (no ``com.record_type``)."""

    EXT_TYPE = "storage_account_properties"


class WebAppEvent(AzureEvent):
    """An event on the ``web_app_config`` records of AzWebApp (no ``com.record_type``)."""

    EXT_TYPE = "web_app_config"

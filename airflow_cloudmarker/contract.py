"""The plugin contract: what a plugin class must have, what it may have, and what its checks are.

This is the one public module a plugin author needs to read (and may import). It defines:

* the **protocols** each kind of plugin satisfies (``CloudPlugin``, ``ShardedCloudPlugin``,
  ``EventPlugin``, ``StorePlugin``, ``AlertPlugin``): plain classes satisfy them structurally,
  no base class or registration needed;
* the **optional abilities** (``ABILITIES``): every attribute or method the framework looks for
  beyond the protocols, with the kinds it applies to and what the framework does with it; the
  framework asks the helpers below (``is_sharded``, ``max_parallel_shards``,
  ``keeps_every_event``, ``abort_method``, ``checks_of``) instead of probing plugins itself;
* **check metadata** (``CheckMetadata``): an event plugin's checks as validated data beside its
  class (a stable id, title, default severity, resource type, risk, remediation, links and the
  benchmark controls it maps to), read by the findings, the docs and ``cloudmarker --list-plugins``.

It depends on nothing of the framework but ``util``, so plugins importing it import no
orchestration module (no Airflow, no DAG code).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import string
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from airflow_cloudmarker.util import SEVERITIES

# -- the protocols ---------------------------------------------------------------------------


@runtime_checkable
class CloudPlugin(Protocol):
    """A cloud plugin: ``read()`` yields records (dicts with ``raw``, ``ext``, ``com``); ``done()`` after."""

    def read(self) -> Iterable[dict[str, Any]]:
        """Yield the records, lazily if it can (they are batched as they come); raising fails the fetch task."""

    def done(self) -> None:
        """Release connections once read() is exhausted; not called when read() raised."""


@runtime_checkable
class ShardedCloudPlugin(Protocol):
    """A cloud plugin that splits its work: ``shards()`` lists the parts, ``read(shard)`` reads one.

    Each shard is a small JSON value (a subscription id, a project id); the DAG packs the shards
    into at most ``max_shard_groups`` groups and maps one fetch task per group, which reads its
    shards concurrently, each on a fresh instance. Optional: ``max_parallel_shards`` and
    ``max_shard_groups`` (see ``ABILITIES``).
    """

    def shards(self) -> Sequence[Any]:
        """List the shards, each a small JSON value; called in a task of its own, before any read()."""

    def read(self, shard: Any) -> Iterable[dict[str, Any]]:
        """Yield the records of one shard, on a fresh instance per shard (shards run in parallel threads).

        Raising fails this shard only: the group's other shards are read and delivered, then the
        fetch task fails naming the shard (and the cloud's findings stay open).
        """

    def done(self) -> None:
        """Release connections once read(shard) is exhausted; not called when it raised."""


@runtime_checkable
class EventPlugin(Protocol):
    """An event plugin: ``eval(record)`` yields zero or more events; ``done()`` after the last record.

    Declares its checks as ``CHECK`` (see ``CheckMetadata``); not required, but the findings, the
    docs and ``--list-plugins`` know a check only from there.
    """

    def eval(self, record: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Yield the events of one record (or None); if it raises, that record's events are all dropped."""

    def done(self) -> None:
        """Called once after the last record, also when eval() raised on some records."""


@runtime_checkable
class StorePlugin(Protocol):
    """A store plugin: ``write(record)`` per record, then ``done()`` (flush, close) once all were written.

    Optional: ``abort()`` and ``keeps_every_event`` (see ``ABILITIES``).
    """

    def write(self, record: dict[str, Any]) -> None:
        """Take one record; it may buffer, since nothing written counts until done() returns."""

    def done(self) -> None:
        """Commit what was written; called only when every record was, otherwise abort() (if any) is."""


@runtime_checkable
class AlertPlugin(StorePlugin, Protocol):
    """An alert plugin: the store interface, fed with events (findings) instead of cloud records."""


#: The protocol of each plugin list of an audit (``clouds`` that define ``shards()`` are checked
#: against ``ShardedCloudPlugin``).
PROTOCOLS: dict[str, type] = {
    "clouds": CloudPlugin,
    "events": EventPlugin,
    "stores": StorePlugin,
    "alerts": AlertPlugin,
}


def protocol_for(cls: type, kind: str) -> type:
    """The protocol ``cls`` must satisfy when listed under ``kind`` (``clouds``, ``events``, ...)."""
    if kind == "clouds" and is_sharded(cls):
        return ShardedCloudPlugin
    return PROTOCOLS[kind]


def protocol_methods(protocol: type) -> tuple[str, ...]:
    """The methods a protocol requires, in the order it declares them (its bases' first)."""
    names: dict[str, None] = {}
    for base in reversed(protocol.__mro__):
        if base in (object, Protocol) or not getattr(base, "_is_protocol", False):
            continue
        names.update((n, None) for n, v in vars(base).items() if not n.startswith("_") and callable(v))
    return tuple(names)


def missing_methods(cls: type, kind: str) -> list[str]:
    """The methods of its kind's protocol that ``cls`` lacks (or has as something not callable)."""
    return [m for m in protocol_methods(protocol_for(cls, kind)) if not callable(getattr(cls, m, None))]


# -- optional abilities ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ability:
    """One optional attribute or method the framework looks for on a plugin class."""

    name: str
    #: The plugin lists (``clouds``, ``events``, ``stores``, ``alerts``) in which it means something.
    kinds: tuple[str, ...]
    #: What the plugin declares, in one phrase.
    declared_as: str
    #: What the framework does with it.
    meaning: str


DEFAULT_MAX_PARALLEL_SHARDS = 8
#: At most this many mapped fetch tasks per sharded cloud, unless the plugin or its config says otherwise.
DEFAULT_MAX_SHARD_GROUPS = 32

#: Every optional ability, in one place. Anything not listed here is not looked for.
ABILITIES: tuple[Ability, ...] = (
    Ability(
        "shards",
        ("clouds",),
        "method shards() returning a list of small JSON values",
        "the DAG gets a shards_<key> task calling shards() and packing the shards into at most "
        "max_shard_groups groups, then maps one fetch task per group, which calls read(shard) on a fresh "
        "instance per shard; a failing shard is reported by its id, the other shards' records are delivered, "
        "then the task fails (and the cloud's findings stay open)",
    ),
    Ability(
        "max_parallel_shards",
        ("clouds",),
        f"positive int class attribute (default {DEFAULT_MAX_PARALLEL_SHARDS})",
        "one fetch task reads at most this many of its shards at once (threads), and at most this many "
        "fetch tasks of the cloud run at once (max_active_tis_per_dagrun); only with shards",
    ),
    Ability(
        "max_shard_groups",
        ("clouds",),
        "positive int class attribute (the plugin's max_shard_groups config key overrides it; without "
        f"either, [cloudmarker] max_shard_groups, default {DEFAULT_MAX_SHARD_GROUPS})",
        "the shards are packed into at most this many mapped fetch tasks (never more than Airflow's "
        "[core] max_map_length); only with shards",
    ),
    Ability(
        "api_counts",
        ("clouds",),
        "method api_counts() returning a dict of counter names to ints (such as calls, throttled)",
        "called after read() is exhausted, before done(); the fetch task adds up the counts of its "
        "shards and logs them in its summary line and its manifest (api_counts); an error in it is ignored",
    ),
    Ability(
        "abort",
        ("stores", "alerts"),
        "method abort() taking no arguments",
        "called instead of done() when the task fails or is interrupted before done() returns, to drop "
        "partial output; an error it raises is logged as a warning and never replaces the task's error",
    ),
    Ability(
        "write_batch",
        ("stores", "alerts"),
        "method write_batch(records) taking a list of records",
        "called with each batch the task reads (up to [cloudmarker] batch_size records, in order) "
        "instead of write() per record; it must do what write() on each record in turn would do. "
        "It saves a call and the per-record set-up for every record: FileStore encodes a batch in one go",
    ),
    Ability(
        "keeps_every_event",
        ("stores", "alerts"),
        "bool class attribute (default False; True on the built-in stores)",
        "used as an alert under alert_on: changes, the plugin still gets every event (new, open and "
        "resolved), because it is the record of what was found rather than a notification",
    ),
    Ability(
        "CHECK",
        ("events",),
        "a CheckMetadata, or a tuple of them when the plugin emits several kinds of findings",
        "the checks the plugin makes: findings take a finding's default severity from the check its "
        "com.check_id names; the docs and cloudmarker --list-plugins show them",
    ),
)
ABILITY_NAMES = frozenset(a.name for a in ABILITIES)


def _callable_attr(obj: Any, name: str) -> Callable[..., Any] | None:
    value = getattr(obj, name, None)
    return value if callable(value) else None


def is_sharded(cls_or_obj: Any) -> bool:
    """True when a cloud plugin splits its work into shards fetched by mapped tasks."""
    return _callable_attr(cls_or_obj, "shards") is not None


def max_parallel_shards(cls_or_obj: Any) -> int:
    """How many shards of one run may be fetched at once (the plugin's ``max_parallel_shards``)."""
    value = getattr(cls_or_obj, "max_parallel_shards", None)
    return value if _positive_int(value) else DEFAULT_MAX_PARALLEL_SHARDS


def max_shard_groups(cls_or_obj: Any) -> int | None:
    """The plugin's own ``max_shard_groups``, or None when it declares none (the framework's default applies)."""
    value = getattr(cls_or_obj, "max_shard_groups", None)
    return value if _positive_int(value) else None


def shard_groups(shards: Sequence[Any], groups: int) -> list[list[Any]]:
    """Pack ``shards`` into at most ``groups`` lists of consecutive shards, sizes differing by one at most.

    Order is kept (group 0 holds the first shards), so the same shard list always gives the same
    groups; fewer shards than ``groups`` give one shard a group.
    """
    count = len(shards)
    groups = max(1, min(groups, count))
    size, extra = divmod(count, groups)
    packed, start = [], 0
    for index in range(groups if count else 0):
        end = start + size + (1 if index < extra else 0)
        packed.append(list(shards[start:end]))
        start = end
    return packed


def api_counts(obj: Any) -> dict[str, int]:
    """The plugin's ``api_counts()`` (its int values only), or {} when it has none or it fails."""
    method = _callable_attr(obj, "api_counts")
    if method is None:
        return {}
    try:
        counts = method()
    except Exception:  # a counter must never fail a fetch that read everything
        return {}
    if not isinstance(counts, Mapping):
        return {}
    return {str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}


def keeps_every_event(cls_or_obj: Any) -> bool:
    """True when a store or alert gets every event whatever ``alert_on`` says (it is a record)."""
    return getattr(cls_or_obj, "keeps_every_event", False) is True


def abort_method(obj: Any) -> Callable[[], Any] | None:
    """The plugin's ``abort()``, or None when it has none."""
    return _callable_attr(obj, "abort")


def write_batch_method(obj: Any) -> Callable[[list], Any] | None:
    """The plugin's ``write_batch(records)``, or None when it takes records one ``write()`` at a time."""
    return _callable_attr(obj, "write_batch")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def ability_problems(cls: type, kind: str) -> list[str]:
    """What is wrong with the optional abilities ``cls`` declares for ``kind``, each with its fix."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    problems = []
    if kind == "clouds":
        shards = getattr(cls, "shards", None)
        if shards is not None and not callable(shards):
            problems.append(f"{name}.shards must be a method returning the list of shards; define def shards(self)")
        counts = getattr(cls, "api_counts", None)
        if counts is not None and not callable(counts):
            problems.append(
                f"{name}.api_counts must be a method returning a dict of counts; define def api_counts(self)"
            )
        for attribute, example in (("max_parallel_shards", 8), ("max_shard_groups", 32)):
            value = getattr(cls, attribute, None)
            if value is not None and not _positive_int(value):
                problems.append(
                    f"{name}.{attribute} must be a positive integer, not {value!r}; "
                    f"set it to a number such as {example}"
                )
    if kind in ("stores", "alerts"):
        value = getattr(cls, "keeps_every_event", None)
        if value is not None and not isinstance(value, bool):
            problems.append(f"{name}.keeps_every_event must be True or False, not {value!r}; set it to True or False")
        abort = getattr(cls, "abort", None)
        if abort is not None and not callable(abort):
            problems.append(f"{name}.abort must be a method taking no arguments; define def abort(self)")
        write_batch = getattr(cls, "write_batch", None)
        if write_batch is not None and not callable(write_batch):
            problems.append(
                f"{name}.write_batch must be a method taking a list of records; define def write_batch(self, records)"
            )
    if kind == "events":
        try:
            checks_of(cls)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}.CHECK {exc}; declare CHECK = CheckMetadata(...) from airflow_cloudmarker.contract")
    return problems


# -- check metadata ----------------------------------------------------------------------------

#: Benchmark names as ``CheckMetadata.controls`` spells them (the built-in checks map to these).
CIS_AZURE = "CIS Microsoft Azure Foundations 6.0.0"
CIS_GCP = "CIS Google Cloud Platform Foundation 5.0.0"
CIS_AWS = "CIS Amazon Web Services Foundations 7.0.0"
#: Older CIS Azure benchmarks, for checks whose controls left the newest one (from 4.0 on, CIS moved
#: the database, App Service and most VM controls out of the Foundations benchmark).
CIS_AZURE_3 = "CIS Microsoft Azure Foundations 3.0.0"
CIS_AZURE_2 = "CIS Microsoft Azure Foundations 2.0.0"

_CHECK_ID = re.compile(r"[a-z0-9_]+")
_CONTROL_ID = re.compile(r"[0-9]+(\.[0-9]+)*")
_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner} {name} must be a non-empty string, not {value!r}")
    return value


def _template_fields(owner: str, name: str, template: str) -> frozenset[str]:
    """The ``{placeholder}`` names of a text; only plain names are allowed (no index, format or conversion)."""
    names = set()
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{owner} {name} is not a valid text template ({exc}); write braces as {{{{ and }}}}") from exc
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if not _PLACEHOLDER.fullmatch(field_name) or spec or conversion:
            raise ValueError(f"{owner} {name}: placeholder {{{field_name}}} must be a plain name such as {{reference}}")
        names.add(field_name)
    return frozenset(names)


def _links(owner: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{owner} links must be a list of URLs, not {value!r}")
    links = tuple(value)
    for link in links:
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in link:
            raise ValueError(f"{owner} links: {link!r} is not an http(s) URL")
    return links


def _controls(owner: str, value: Any) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner} controls must map benchmark names to lists of control ids, not {value!r}")
    controls = {}
    for benchmark, ids in value.items():
        _text(owner, "controls benchmark name", benchmark)
        if isinstance(ids, str) or not isinstance(ids, Iterable):
            raise ValueError(
                f"{owner} controls[{benchmark!r}] must be a list of control ids such as ['7.1'], not {ids!r}"
            )
        ids = tuple(ids)
        bad = [i for i in ids if not (isinstance(i, str) and _CONTROL_ID.fullmatch(i))]
        if not ids or bad:
            raise ValueError(
                f"{owner} controls[{benchmark!r}]: {bad or ids!r} are not control ids; use dotted numbers such as '7.1'"
            )
        controls[benchmark] = ids
    return types.MappingProxyType(controls)


@dataclass(frozen=True)
class CheckMetadata:
    """One check an event plugin makes, as validated data beside its class.

    ``description`` and ``remediation`` are the texts of an event (``com.description`` and
    ``com.recommendation``): plain English that may hold ``{placeholders}`` filled from the event
    (``{reference}``, ``{vm_name}``), so one text serves the docs and every event. ``title`` names
    the check in a line (``com.title``); ``risk`` says why it matters. ``controls`` maps a
    benchmark name (``CIS_AZURE``, ``CIS_GCP``) to the ids of the controls the check verifies;
    leave it empty when no control applies. Raises ``ValueError`` naming the field when a value
    is unusable, when the plugin class is defined (so a bad declaration never reaches a run).
    """

    check_id: str
    title: str
    severity: str
    resource_type: str
    risk: str
    remediation: str
    description: str = ""
    links: Sequence[str] = ()
    controls: Mapping[str, Sequence[str]] = field(default_factory=dict, hash=False)
    #: The names an event must give to fill ``description`` and ``remediation`` (set from them).
    placeholders: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        check_id = self.check_id
        if not isinstance(check_id, str) or not _CHECK_ID.fullmatch(check_id):
            raise ValueError(f"CheckMetadata check_id must be lower-case letters, digits and _, not {check_id!r}")
        owner = f"check {check_id}:"
        for name in ("title", "resource_type", "risk", "remediation"):
            _text(owner, name, getattr(self, name))
        if "\n" in self.title:
            raise ValueError(f"{owner} title must be one line")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{owner} severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")
        if self.description == "":
            object.__setattr__(self, "description", self.title)
        _text(owner, "description", self.description)
        placeholders = _template_fields(owner, "description", self.description)
        placeholders |= _template_fields(owner, "remediation", self.remediation)
        object.__setattr__(self, "placeholders", placeholders)
        object.__setattr__(self, "links", _links(owner, self.links))
        object.__setattr__(self, "controls", _controls(owner, self.controls))

    def event_com(self, values: Mapping[str, Any], severity: str | None = None) -> dict[str, Any]:
        """The ``com`` fields of an event of this check: id, title, severity and the two texts filled in.

        ``severity`` is the plugin's configured one; None takes the check's default.
        """
        try:
            description = self.description.format_map(values)
            recommendation = self.remediation.format_map(values)
        except KeyError as exc:
            missing = ", ".join(sorted(self.placeholders - values.keys()))
            raise KeyError(f"check {self.check_id}: no value for {missing}") from exc
        return {
            "check_id": self.check_id,
            "title": self.title,
            "severity": severity or self.severity,
            "description": description,
            "recommendation": recommendation,
        }

    def controls_text(self) -> str:
        """``CIS Microsoft Azure Foundations 6.0.0: 7.1; ...``, or ``none``: as listing, docs and emails write it."""
        return "; ".join(f"{name}: {', '.join(ids)}" for name, ids in self.controls.items()) or "none"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for ``--list-plugins --json`` and the coming findings UI)."""
        return {
            "check_id": self.check_id,
            "title": self.title,
            "severity": self.severity,
            "resource_type": self.resource_type,
            "risk": self.risk,
            "description": self.description,
            "remediation": self.remediation,
            "links": list(self.links),
            "controls": {k: list(v) for k, v in self.controls.items()},
        }


#: Checks seen so far, by id: those of every event class ``checks_of`` was asked about.
_KNOWN_CHECKS: dict[str, CheckMetadata] = {}
_BUILTIN_EVENTS_PACKAGE = "airflow_cloudmarker.events"
_builtins_loaded = False


def checks_of(cls: type) -> tuple[CheckMetadata, ...]:
    """The checks an event plugin class declares in ``CHECK`` (one, or a tuple); () when it declares none.

    Raises ``TypeError``/``ValueError`` for a ``CHECK`` that is neither, or repeats a check id.
    The checks are remembered, so ``find_check`` knows them by id afterwards.
    """
    declared = getattr(cls, "CHECK", None)
    if declared is None:
        return ()
    checks = (declared,) if isinstance(declared, CheckMetadata) else declared
    if not isinstance(checks, tuple) or not checks or not all(isinstance(c, CheckMetadata) for c in checks):
        raise TypeError(f"must be a CheckMetadata or a tuple of them, not {declared!r}")
    ids = [c.check_id for c in checks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"repeats a check id ({', '.join(ids)}); give each check its own id")
    for check in checks:
        _KNOWN_CHECKS.setdefault(check.check_id, check)
    return checks


def builtin_event_classes() -> list[type]:
    """The event plugin classes of this package (public modules of ``airflow_cloudmarker.events``)."""
    package = importlib.import_module(_BUILTIN_EVENTS_PACKAGE)
    classes = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_BUILTIN_EVENTS_PACKAGE}.{info.name}")
        classes += [
            v
            for k, v in vars(module).items()
            if isinstance(v, type) and v.__module__ == module.__name__ and not k.startswith("_") and hasattr(v, "eval")
        ]
    return classes


def find_check(check_id: Any) -> CheckMetadata | None:
    """The check with this id: of the built-in events, or of an event class loaded in this process."""
    global _builtins_loaded
    if not isinstance(check_id, str):
        return None
    if check_id not in _KNOWN_CHECKS and not _builtins_loaded:
        _builtins_loaded = True
        for cls in builtin_event_classes():
            checks_of(cls)
    return _KNOWN_CHECKS.get(check_id)


def default_severity(check_id: Any, fallback: str) -> str:
    """The default severity of the check ``check_id`` names, or ``fallback`` for an unknown check."""
    check = find_check(check_id)
    return check.severity if check is not None else fallback

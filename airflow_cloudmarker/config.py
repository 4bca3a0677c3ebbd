"""Cascading YAML config: load, merge, validate, and hand over one typed ``Config``.

The cascade is the tutorial's: the built-in base config, then each config file in order
(missing files skipped), mappings merged key by key and every other value replaced.
Validation happens here, before any DAG or task exists, so a wrong config is reported in one
line naming the file, the key and the fix, and never as a traceback from deep inside Airflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import zoneinfo
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from airflow_cloudmarker import plugins as plugin_loader
from airflow_cloudmarker import smtp

#: The tutorial's default cascade, after the base config.
DEFAULT_CONFIG_PATHS: tuple[str, ...] = (
    "/etc/cloudmarker.yaml",
    "~/.cloudmarker.yaml",
    "~/cloudmarker.yaml",
    "cloudmarker.yaml",
)
#: Environment variable naming the config files (os.pathsep-separated) for the DAG file.
CONFIG_ENV_VAR = "CLOUDMARKER_CONFIG"
BASE_CONFIG_NAME = "<built-in base config>"

AUDIT_PLUGIN_LISTS = ("clouds", "stores", "events", "alerts")
#: Audit keys beside the plugin lists that the framework understands.
AUDIT_OPTIONS = ("alert_on",)
#: A plugin's ``on_error`` (beside ``plugin`` and ``params``): what an event plugin raising on a record does.
ON_ERROR_CHOICES = ("fail", "skip")
#: The keys of a ``plugins`` entry; any other key is taken as a param, with a warning.
PLUGIN_ENTRY_KEYS = ("plugin", "params", "on_error", "max_shard_groups")
TOP_LEVEL_KEYS = ("plugins", "audits", "run", "logger", "schedule", "timezone", "email", "mutelist")
#: The conditions of a ``mutelist`` rule, each a list; a rule matches when every one it gives matches.
MUTE_CONDITIONS = ("audits", "events", "record_types", "references", "finding_ids")
MUTE_KEYS = ("reason", *MUTE_CONDITIONS, "expires")
#: The top-level ``email`` takes this plugin's params; loaded by path like any plugin (config is below plugins).
EMAIL_PARAMS_PLUGIN = "airflow_cloudmarker.alerts.emailalert.EmailAlert"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
_SCHEDULE_PATTERN = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ConfigError(Exception):
    """The config cannot be used. ``str(error)`` is one line per problem, each naming file, key and fix."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class PluginConfig:
    """One entry of ``plugins``: the class path and the keyword arguments for its constructor."""

    key: str
    class_path: str
    params: Mapping[str, Any]
    source: str
    #: An event plugin's ``on_error``: ``fail`` its task when eval() raises on a record, or ``skip`` the record.
    on_error: str = "fail"
    #: A sharded cloud's ``max_shard_groups``: at most this many mapped fetch tasks (None: the plugin's or default).
    max_shard_groups: int | None = None


@dataclass(frozen=True)
class AuditConfig:
    """One entry of ``audits``: which plugin keys fetch, check, store and alert."""

    key: str
    clouds: tuple[str, ...]
    stores: tuple[str, ...]
    events: tuple[str, ...]
    alerts: tuple[str, ...]
    source: str
    alert_on: str = "all"

    def plugin_keys(self, kind: str) -> tuple[str, ...]:
        """The plugin keys this audit lists under ``kind`` (clouds, stores, events or alerts), in config order."""
        return getattr(self, kind)


@dataclass(frozen=True)
class MuteRule:
    """One ``mutelist`` rule: accepted risk, muted in alerts but still stored (see ``findings.Mutelist``).

    Each condition is a tuple (empty: not given); the rule matches a finding when every given one
    matches. ``expires`` is the last local day the rule mutes (None: never expires).
    """

    index: int
    reason: str
    source: str
    audits: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    record_types: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    finding_ids: tuple[str, ...] = ()
    expires: dt.date | None = None

    def label(self) -> str:
        """``mutelist[2] (reason: ...)``: how logs, emails and errors name the rule."""
        return f"mutelist[{self.index}] (reason: {self.reason})"

    def applies_to(self, audit_key: str) -> bool:
        """True when the rule concerns ``audit_key`` (it names no audits, or names this one)."""
        return not self.audits or audit_key in self.audits

    def expired(self, today: dt.date) -> bool:
        """True when ``today`` is after the rule's last day: it mutes nothing any more."""
        return self.expires is not None and today > self.expires


@dataclass
class Config:
    """The merged, validated config.

    ``audit_errors`` holds problems that concern one audit only: the DAG file skips such an
    audit and builds the others; the CLI refuses to run it.
    """

    plugins: dict[str, PluginConfig]
    audits: dict[str, AuditConfig]
    run: tuple[str, ...]
    schedule: tuple[int, int] | None
    timezone: str | None
    logger: dict[str, Any]
    email: dict[str, Any] | None
    sources: tuple[str, ...]
    raw: dict[str, Any]
    audit_errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mutelist: tuple[MuteRule, ...] = ()

    def mutelist_for(self, audit_key: str) -> tuple[MuteRule, ...]:
        """The ``mutelist`` rules that concern ``audit_key``, in config order."""
        return tuple(rule for rule in self.mutelist if rule.applies_to(audit_key))

    def valid_audits(self) -> list[str]:
        """Audit keys with no problems, sorted so DAG files list them in a stable order."""
        return sorted(k for k in self.audits if k not in self.audit_errors)


def base_config_text() -> str:
    """The built-in base config as YAML text (what ``cloudmarker --print-base-config`` prints)."""
    return resources.files("airflow_cloudmarker").joinpath("baseconfig.yaml").read_text(encoding="utf-8")


def config_paths_from_env() -> list[str] | None:
    """Config files named by ``CLOUDMARKER_CONFIG`` (os.pathsep-separated), or None when unset."""
    value = os.environ.get(CONFIG_ENV_VAR)
    if value is None:
        return None
    return [p for p in value.split(os.pathsep) if p.strip()]


#: At most this many YAML nodes may come from expanding aliases in one file: a "billion laughs"
#: (aliases of aliases of ...) is a few hundred bytes that expand to a billion values.
ALIAS_NODE_BUDGET = 1_000_000
#: Mappings and lists nested deeper than this are refused (merging walks them recursively).
MAX_NESTING = 100
#: libyaml's parser when PyYAML has it (about five times faster on a big config), else PyYAML's own.
_SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLimitError(yaml.MarkedYAMLError):
    """A document over the alias budget, too deep, or recursive; reported like a YAML error."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return node.value  # a SequenceNode (scalars are never pushed)


def _finish_node(node: yaml.Node, sizes: dict[int, int], heights: dict[int, int]) -> int:
    """Record a mapping's or list's expanded size and height from its finished children.

    Returns how many distinct nodes it adds to the graph: itself and its scalars.
    """
    size, height, scalars = 1, 1, 0
    for kid in _children(node):
        if isinstance(kid, yaml.ScalarNode):
            size += 1
            scalars += 1
            height = max(height, 2)
        else:
            size += sizes[id(kid)]
            height = max(height, heights[id(kid)] + 1)
    if height > MAX_NESTING:
        raise _YamlLimitError(
            problem=f"nested more than {MAX_NESTING} levels deep; flatten the value",
            problem_mark=node.start_mark,
        )
    sizes[id(node)], heights[id(node)] = size, height
    return scalars + 1


def check_node_graph(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand past ``ALIAS_NODE_BUDGET`` nodes, or too deep, or recursive.

    PyYAML composes an alias as a second reference to its anchor's node, so the document is a
    graph of distinct nodes. One pass over its mappings and lists (post-order, memoised, no
    recursion; scalars are counted, never visited) gives the size the document would have with
    every alias written out; the difference with the size of the graph is what aliases add. A
    bomb is refused here, in milliseconds, before constructing, merging or building anything
    walks the expansion.
    """
    if isinstance(root, yaml.ScalarNode):
        return
    sizes: dict[int, int] = {}  # id of a mapping or list -> its size with aliases written out
    heights: dict[int, int] = {}
    distinct = 0  # the graph's size: each mapping or list once, plus the scalars in them
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        ident = id(node)
        if finished:
            open_nodes.discard(ident)
            distinct += _finish_node(node, sizes, heights)
            continue
        if ident in sizes:
            continue
        if ident in open_nodes:  # reached again before it was finished: it contains itself
            raise _YamlLimitError(
                problem="an alias refers to an anchor that contains it (a recursive value); remove the alias",
                problem_mark=node.start_mark,
            )
        open_nodes.add(ident)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if not isinstance(kid, yaml.ScalarNode))
    if sizes[id(root)] - distinct > ALIAS_NODE_BUDGET:
        raise _YamlLimitError(
            problem=f"its aliases expand to more than {ALIAS_NODE_BUDGET:,} values (an alias bomb?); "
            f"write the values out or use fewer nested aliases",
        )


class _GuardedLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, checking the composed document (``check_node_graph``) before constructing it."""

    def construct_document(self, node):
        check_node_graph(node)
        return super().construct_document(node)

    def construct_lenient_timestamp(self, node: yaml.Node) -> Any:
        """A YAML date or time, or its text when it is no real day (``2027-13-01``).

        PyYAML raises a bare ValueError (a traceback) for an impossible date; as text it reaches
        the key's own check, which names the key and the fix (a mutelist rule's ``expires``).
        """
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_GuardedLoader.add_constructor("tag:yaml.org,2002:timestamp", _GuardedLoader.construct_lenient_timestamp)


def _parse_yaml(text: str, source: str) -> Any:
    # Marked YAML errors are not chained: their text quotes the config line, which may hold an inline password.
    try:
        return yaml.load(text, Loader=_GuardedLoader)  # noqa: S506 - a SafeLoader subclass
    except _YamlLimitError as exc:
        where = f"{source}:{exc.problem_mark.line + 1}" if exc.problem_mark else source
        raise ConfigError([f"{where}: YAML refused: {exc.problem}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise ConfigError([f"{where}: YAML syntax error: {problem}; fix the YAML at that line"]) from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError([f"{source}: YAML error: {detail}; fix the file"]) from exc  # no snippet: all shown
    except RecursionError as exc:  # PyYAML's pure-Python composer recurses once per nesting level
        raise ConfigError([f"{source}: YAML refused: nested too deep to read; flatten the values"]) from exc


def _decode(data: bytes, source: str) -> str:
    """The file's text; a file that is not UTF-8 (Latin-1, UTF-16, binary) is one error naming the byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            [
                f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be "
                f"decoded); save the file as UTF-8"
            ]
        ) from None  # not chained: the error holds the file's bytes (inline passwords too) in its ``object``


def _read_files(paths: Iterable[str]) -> list[tuple[str, bytes]]:
    """(absolute path, contents) of each existing file of ``paths``, read once."""
    files = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(full):
            continue
        try:
            with open(full, "rb") as f:
                files.append((full, f.read()))
        except OSError as exc:
            raise ConfigError([f"{full}: cannot read config file: {exc.strerror}"]) from exc
    return files


def _layers(files: Sequence[tuple[str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
    layers = [(BASE_CONFIG_NAME, _parse_yaml(base_config_text(), BASE_CONFIG_NAME))]
    for full, data in files:
        parsed = _parse_yaml(_decode(data, full), full)
        if parsed is None:
            continue  # an empty file changes nothing
        if not isinstance(parsed, dict):
            raise ConfigError(
                [
                    f"{full}: the top level must be a mapping of keys (plugins, audits, run, ...), "
                    f"not a {type(parsed).__name__}"
                ]
            )
        layers.append((full, parsed))
    return layers


def read_layers(paths: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """Read the base config and each existing file in ``paths`` into (source, mapping) layers."""
    return _layers(_read_files(paths))


def _merge(into: dict[str, Any], layer: Mapping[str, Any], source: str, origins: dict, path=()) -> None:
    """Merge ``layer`` into ``into`` in place, remembering which file last set each key."""
    for key, value in layer.items():
        here = (*path, key)
        origins[here] = source
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, source, origins, here)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value, source, origins, here)
        else:
            into[key] = value


def _known(keys: Iterable[str], shown: int = 20) -> str:
    """Keys to suggest in a one-line error: sorted, at most ``shown`` of them (a big config has thousands)."""
    ordered = sorted(keys)
    if not ordered:
        return "none"
    more = f" (and {len(ordered) - shown} more)" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


class _Report:
    """The merged mapping under check, where each key came from, and the problems found so far.

    Every section's checks share one report, so a run shows every problem at once (instead of
    stopping at the first), each naming the file that set the key.
    """

    def __init__(self, merged: dict[str, Any], origins: dict):
        self.merged = merged
        self.origins = origins
        self.fatal: list[str] = []
        self.warnings: list[str] = []
        self.audit_errors: dict[str, list[str]] = {}

    def where(self, *path: str) -> str:
        """``file: dotted.key`` for the file that last set the deepest known part of ``path``."""
        for depth in range(len(path), 0, -1):
            source = self.origins.get(tuple(path[:depth]))
            if source:
                return f"{source}: {'.'.join(path)}"
        return f"{BASE_CONFIG_NAME}: {'.'.join(path)}"

    def source(self, *path: str) -> str:
        """The file that last set exactly ``path`` ("" when none did)."""
        return self.origins.get(path, "")

    def section(self, key: str, contents: str) -> dict[str, Any]:
        """The top-level mapping ``key`` (empty when unset); a non-mapping is a fatal problem and reads as empty."""
        section = self.merged.get(key) or {}
        if not isinstance(section, dict):
            self.fatal.append(f"{self.where(key)}: must be a mapping of {contents}")
            return {}
        return section


# -- plugins -------------------------------------------------------------------
def _plugins(report: _Report) -> dict[str, PluginConfig]:
    """The ``plugins`` section as PluginConfigs; an entry with a wrong shape is reported and left out."""
    result: dict[str, PluginConfig] = {}
    for key, entry in report.section("plugins", "plugin keys to plugin configs").items():
        plugin = _plugin_entry(report, str(key), entry)
        if plugin is not None:
            result[plugin.key] = plugin
    return result


def _plugin_entry(report: _Report, key: str, entry: Any) -> PluginConfig | None:
    """One ``plugins`` entry; keys beside ``plugin``/``params``/``on_error`` are taken as params, with a warning."""
    where = report.where("plugins", key)
    if not isinstance(entry, dict):
        report.fatal.append(f"{where}: must be a mapping with 'plugin' (a class path) and 'params'")
        return None
    params = _plugin_params(report, key, entry.get("params"))
    if params is None:
        return None
    on_error = _on_error(report, key, entry.get("on_error", "fail"))
    groups = _max_shard_groups(report, key, entry.get("max_shard_groups"))
    extra = {k: v for k, v in entry.items() if k not in PLUGIN_ENTRY_KEYS}
    if extra:
        report.warnings.append(
            f"{where}: keys {', '.join(map(str, extra))} are beside 'plugin'/'params'; "
            f"taking them as params (move them under 'params' to silence this warning)"
        )
        params = {**extra, **params}
    return PluginConfig(key, entry.get("plugin"), dict(params), report.source("plugins", key), on_error, groups)


def _plugin_params(report: _Report, key: str, params: Any) -> dict[str, Any] | None:
    """A plugin's ``params`` (empty when unset), or None after reporting that they are not a mapping."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        report.fatal.append(
            f"{report.where('plugins', key, 'params')}: must be a mapping of keyword arguments, "
            f"not a {type(params).__name__}"
        )
        return None
    return params


def _on_error(report: _Report, key: str, on_error: Any) -> str:
    """A plugin's ``on_error``; a value not in ON_ERROR_CHOICES is reported and reads as ``fail``."""
    if on_error in ON_ERROR_CHOICES:
        return on_error
    report.fatal.append(
        f"{report.where('plugins', key, 'on_error')}: must be one of {', '.join(ON_ERROR_CHOICES)}, not {on_error!r}"
    )
    return "fail"


def _max_shard_groups(report: _Report, key: str, value: Any) -> int | None:
    """A sharded cloud's ``max_shard_groups`` (None when unset); a value that is not a positive integer is reported."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        report.fatal.append(
            f"{report.where('plugins', key, 'max_shard_groups')}: must be a positive integer such as 32 "
            f"(how many fetch tasks a sharded cloud's shards are packed into), not {value!r}"
        )
        return None
    return value


class _PluginChecks:
    """Whether a configured plugin can serve as a ``kind`` plugin, checked once per (plugin key, kind).

    The problems are all of them (class, methods, abilities, params), so one run shows every fix;
    a method problem names ``{audit_list}``, which the audit listing the plugin fills in.
    """

    def __init__(self, report: _Report):
        self.report = report
        self._cache: dict[str, list[str]] = {}

    def problems(self, plugin: PluginConfig, kind: str) -> list[str]:
        cache_key = f"{plugin.key}/{kind}"
        if cache_key not in self._cache:
            self._cache[cache_key] = self._check(plugin, kind)
        return self._cache[cache_key]

    def _check(self, plugin: PluginConfig, kind: str) -> list[str]:
        where = self.report.where("plugins", plugin.key, "plugin")
        if not plugin.class_path:
            return [f"{where}: missing; set it to a plugin class path such as cloudmarker.clouds.mockcloud.MockCloud"]
        if not isinstance(plugin.class_path, str):
            return [f"{where}: must be a class path string, not a {type(plugin.class_path).__name__}"]
        try:
            cls = plugin_loader.load_class(plugin.class_path)
        except plugin_loader.PluginError as exc:
            return [f"{where}: {exc}; fix the class path"]
        return [
            *self._method_problems(plugin, cls, kind),
            *(f"{where}: {problem}" for problem in plugin_loader.check_abilities(cls, kind)),
            *self._param_problems(plugin, cls),
        ]

    @staticmethod
    def _method_problems(plugin: PluginConfig, cls: type, kind: str) -> list[str]:
        try:
            plugin_loader.check_methods(cls, kind)
        except plugin_loader.PluginError as exc:
            return [f"{{audit_list}}: plugin key {plugin.key!r}: {exc}; list it under the right key"]
        return []

    def _param_problems(self, plugin: PluginConfig, cls: type) -> list[str]:
        problems = []
        try:
            plugin_loader.check_params(cls, plugin.params)
        except plugin_loader.PluginError as exc:
            problems.append(f"{self.report.where('plugins', plugin.key, 'params')}: {exc}; fix the params")
        for error in plugin_loader.check_param_types(cls, plugin.params):
            problems.append(f"{self.report.where('plugins', plugin.key, 'params', error.param)}: {error}")
        return problems


# -- audits --------------------------------------------------------------------
class _Audits:
    """The ``audits`` section: each audit's problems go to ``report.audit_errors`` (they concern that audit only)."""

    def __init__(self, report: _Report, plugins: dict[str, PluginConfig]):
        self.report = report
        self.plugins = plugins
        self.checks = _PluginChecks(report)

    def validate(self) -> dict[str, AuditConfig]:
        result: dict[str, AuditConfig] = {}
        for key, entry in self.report.section("audits", "audit keys to audit configs").items():
            audit = self._audit(str(key), entry)
            if audit is not None:
                result[audit.key] = audit
        return result

    def _audit(self, key: str, entry: Any) -> AuditConfig | None:
        where = self.report.where("audits", key)
        problems: list[str] = []
        if not _KEY_PATTERN.match(key):
            problems.append(
                f"{where}: audit key may use only letters, digits, '_', '-' and '.' (it becomes the DAG id); rename it"
            )
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping with clouds, stores, events and alerts lists")
            self.report.audit_errors[key] = problems
            return None
        lists = {kind: self._plugin_list(key, kind, entry.get(kind), problems) for kind in AUDIT_PLUGIN_LISTS}
        if not lists["clouds"]:
            problems.append(
                f"{self.report.where('audits', key, 'clouds')}: an audit needs at least one cloud plugin key"
            )
        alert_on = entry.get("alert_on", "all")
        if alert_on not in ("all", "changes"):
            problems.append(f"{self.report.where('audits', key, 'alert_on')}: must be 'all' or 'changes'")
            alert_on = "all"
        self._warn_unknown_keys(key, entry)
        if problems:
            self.report.audit_errors[key] = problems
        return AuditConfig(key=key, source=self.report.source("audits", key), alert_on=alert_on, **lists)

    def _warn_unknown_keys(self, key: str, entry: dict[str, Any]) -> None:
        unknown = [k for k in entry if k not in AUDIT_PLUGIN_LISTS and k not in AUDIT_OPTIONS]
        if unknown:
            self.report.warnings.append(
                f"{self.report.where('audits', key)}: unknown keys {', '.join(map(str, unknown))} ignored "
                f"(an audit has {', '.join(AUDIT_PLUGIN_LISTS + AUDIT_OPTIONS)})"
            )

    def _plugin_list(self, audit: str, kind: str, value: Any, problems: list[str]) -> tuple[str, ...]:
        """One of an audit's plugin lists as a tuple of keys; its problems go to ``problems``."""
        where = self.report.where("audits", audit, kind)
        keys = _string_list(value or [])
        if keys is None:
            problems.append(f"{where}: must be a list of plugin keys")
            return ()
        problems += _duplicate_keys(where, keys)
        for plugin_key in dict.fromkeys(keys):
            problems += self._plugin_key_problems(where, plugin_key, kind)
        return tuple(keys)

    def _plugin_key_problems(self, where: str, plugin_key: str, kind: str) -> list[str]:
        """What is wrong with listing ``plugin_key`` in an audit's ``kind`` list (at ``where``)."""
        if not _KEY_PATTERN.match(plugin_key):
            return [
                f"{where}: plugin key {plugin_key!r} may use only letters, "
                f"digits, '_', '-' and '.' (it names a task); rename it"
            ]
        if plugin_key not in self.plugins:
            return [
                f"{where}: plugin key {plugin_key!r} is not defined under plugins; "
                f"define it there or use one of: {_known(self.plugins)}"
            ]
        return [p.replace("{audit_list}", where) for p in self.checks.problems(self.plugins[plugin_key], kind)]


def _string_list(value: Any) -> list[str] | None:
    """``value`` as a list of strings (one string reads as a list of one), or None when it is neither."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _duplicate_keys(where: str, keys: list[str]) -> list[str]:
    # Each entry becomes its own task: records would be stored, events sent, more than once.
    return [
        f"{where}: plugin key {plugin_key!r} is listed {count} times; list each plugin key once "
        f"(every entry is a task of its own, so the records and events would be handled {count} times)"
        for plugin_key, count in Counter(keys).items()
        if count > 1
    ]


# -- run, schedule, timezone, email, top-level keys -----------------------------
def _run(report: _Report, audits: Mapping[str, AuditConfig]) -> tuple[str, ...]:
    """The audits ``run`` schedules, each once, in the order given; an unknown audit is fatal."""
    value = report.merged.get("run")
    if value is None:
        return ()
    keys = _string_list(value)
    if keys is None:
        report.fatal.append(f"{report.where('run')}: must be a list of audit keys")
        return ()
    for audit_key in keys:
        if audit_key not in audits:
            report.fatal.append(
                f"{report.where('run')}: audit {audit_key!r} is not defined under audits; "
                f"define it there or use one of: {_known(audits)}"
            )
    return tuple(dict.fromkeys(keys))


def _schedule(report: _Report) -> tuple[int, int] | None:
    """``schedule`` as (hour, minute), or None when unset or wrong (then a fatal problem)."""
    value = report.merged.get("schedule")
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 12:30 as the base-60 integer 750.
        return divmod(value, 60)
    match = _SCHEDULE_PATTERN.match(str(value).strip())
    if not match:
        report.fatal.append(
            f'{report.where("schedule")}: {value!r} is not a time of day; use 24-hour "HH:MM" such as "00:00"'
        )
        return None
    return int(match.group(1)), int(match.group(2))


def _timezone(report: _Report) -> str | None:
    """``timezone`` when it names an IANA zone; None when unset or unknown (then a fatal problem)."""
    value = report.merged.get("timezone")
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        report.fatal.append(
            f"{report.where('timezone')}: unknown time zone {value!r}; use an IANA name such as Europe/Paris"
        )
        return None
    return str(value)


def _mapping(report: _Report, key: str) -> dict[str, Any] | None:
    """The top-level ``key`` when unset or a mapping; anything else is fatal and reads as None."""
    value = report.merged.get(key)
    if value is not None and not isinstance(value, dict):
        report.fatal.append(f"{report.where(key)}: must be a mapping, not a {type(value).__name__}")
        return None
    return value


def _email(report: _Report, value: dict[str, Any] | None) -> None:
    """The top-level ``email`` takes EmailAlert's params (begin/end audit emails): check them now."""
    if not value:
        return
    email_alert = plugin_loader.load_class(EMAIL_PARAMS_PLUGIN)
    type_errors = plugin_loader.check_param_types(email_alert, value)
    for error in type_errors:
        report.fatal.append(f"{report.where('email', error.param)}: {error}; fix the email config")
    if type_errors:
        return
    try:
        plugin_loader.check_params(email_alert, value)
        smtp.smtp_settings("email", **smtp.smtp_params(value))  # values only: no network
    except (plugin_loader.PluginError, TypeError, ValueError) as exc:
        report.fatal.append(f"{report.where('email')}: {exc}; fix the email config")


# -- mutelist ------------------------------------------------------------------
def _mutelist(report: _Report) -> tuple[MuteRule, ...]:
    """The ``mutelist`` rules; every problem is fatal (a wrong rule could mute too much or too little)."""
    value = report.merged.get("mutelist")
    if value is None:
        return ()
    if not isinstance(value, list):
        report.fatal.append(
            f"{report.where('mutelist')}: must be a list of rules (each a mapping with a reason and conditions), "
            f"not a {type(value).__name__}"
        )
        return ()
    rules = (_mute_rule(report, index, entry) for index, entry in enumerate(value))
    return tuple(rule for rule in rules if rule is not None)


def _mute_rule(report: _Report, index: int, entry: Any) -> MuteRule | None:
    """One ``mutelist`` rule, or None after reporting each of its problems (one line each)."""
    if not isinstance(entry, dict):
        report.fatal.append(
            f"{report.where('mutelist')}[{index}]: a rule must be a mapping with a reason and conditions "
            f"({', '.join(MUTE_CONDITIONS)}), not a {type(entry).__name__}"
        )
        return None
    reason = entry.get("reason")
    reason = " ".join(reason.split()) if isinstance(reason, str) else None  # one line in logs and errors
    has_reason = bool(reason)
    where = f"{report.where('mutelist')}[{index}] ({f'reason: {reason}' if has_reason else 'no reason'})"
    problems = [] if has_reason else [f"{where}: no reason; add reason: saying why the risk is accepted (a ticket)"]
    unknown = [str(k) for k in entry if k not in MUTE_KEYS]
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}; a rule has {', '.join(MUTE_KEYS)}")
    conditions = {key: _mute_list(entry.get(key), key, where, problems) for key in MUTE_CONDITIONS}
    expires = _mute_expires(entry.get("expires"), where, problems)
    if not any(entry.get(key) for key in MUTE_CONDITIONS):  # empty lists give no condition either
        problems.append(
            f"{where}: no condition, so it would mute every finding; give at least one of {', '.join(MUTE_CONDITIONS)}"
        )
    report.fatal += problems
    if problems:
        return None
    return MuteRule(index, reason, report.source("mutelist"), expires=expires, **conditions)


def _mute_list(value: Any, key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    """A rule's condition ``key`` as a tuple of strings (numbers read as their text); a non-list is a problem."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        shown = value if isinstance(value, (str, int, float)) else "..."
        problems.append(f"{where}: {key} must be a list of strings; write it as {key}: [{shown}]")
        return ()
    return tuple(str(v) for v in value)


def _mute_expires(value: Any, where: str, problems: list[str]) -> dt.date | None:
    """A rule's ``expires`` as a date (a YAML date or a ``YYYY-MM-DD`` string); anything else is a problem."""
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE_PATTERN.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(f"{where}: expires {value!r} is not a date; write the last day it mutes as YYYY-MM-DD")
    return None


def _top_level(report: _Report) -> None:
    """Warn about top-level keys the framework ignores (a misplaced ``emailalert`` gets its own hint)."""
    for key in report.merged:
        if key == "emailalert":
            report.warnings.append(
                f"{report.where(key)}: a top-level 'emailalert' key is ignored; the begin/end audit emails "
                f"are configured under the top-level key 'email' (same params as EmailAlert)"
            )
        elif key not in TOP_LEVEL_KEYS:
            report.warnings.append(
                f"{report.where(str(key))}: unknown top-level key ignored (known: {', '.join(TOP_LEVEL_KEYS)})"
            )


#: Validated configs of this process, by (path, contents digest) of their files: the DAG file is
#: imported again and again in one process (each ``dag.test()`` re-parses the DAGs folder), and a
#: big config costs seconds to parse. Few entries: a process uses one config.
_CACHE: OrderedDict[tuple, Config] = OrderedDict()
_CACHE_ENTRIES = 4


def clear_cache() -> None:
    """Forget the configs parsed so far (for benchmarks and tests that time a first parse)."""
    _CACHE.clear()


def load_config(paths: Iterable[str] | None = None) -> Config:
    """Load the cascade (base config, then ``paths`` or the default list) and validate it.

    Raises ``ConfigError`` for problems that make every audit unusable (YAML syntax, wrong
    top-level types, ``run`` naming an unknown audit, a bad schedule). Problems of one audit are
    left in ``Config.audit_errors``.

    Each file is read on every call but parsed and validated once per process for the same
    contents: the same ``Config`` object comes back, so callers must treat it as read-only.
    """
    files = _read_files(DEFAULT_CONFIG_PATHS if paths is None else paths)
    key = tuple((full, hashlib.blake2b(data).digest()) for full, data in files)
    config = _CACHE.get(key)
    if config is None:
        config = _validate(_layers(files))
        _CACHE[key] = config
        while len(_CACHE) > _CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return config


def _validate(layers: list[tuple[str, dict[str, Any]]]) -> Config:
    """Merge the layers and check them: the ``Config``, or ``ConfigError`` with every fatal problem."""
    merged: dict[str, Any] = {}
    origins: dict[tuple, str] = {}
    for source, layer in layers:
        _merge(merged, layer, source, origins)

    report = _Report(merged, origins)
    _top_level(report)
    plugins = _plugins(report)
    audits = _Audits(report, plugins).validate()
    run = _run(report, audits)
    schedule = _schedule(report)
    timezone = _timezone(report)
    logger = _mapping(report, "logger") or {}
    email = _mapping(report, "email")
    _email(report, email)
    mutelist = _mutelist(report)
    if report.fatal:
        raise ConfigError(report.fatal)
    return Config(
        plugins=plugins,
        audits=audits,
        run=run,
        schedule=schedule,
        timezone=timezone,
        logger=logger,
        email=email,
        sources=tuple(s for s, _ in layers),
        raw=merged,
        audit_errors=report.audit_errors,
        warnings=report.warnings,
        mutelist=mutelist,
    )

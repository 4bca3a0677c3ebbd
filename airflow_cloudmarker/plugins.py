"""Load plugin classes by dotted path, check them against the contract, and list the built-in ones.

A plugin is a plain class constructed with the config's ``params`` as keyword arguments. What
each kind of plugin must and may have is defined in ``contract`` (its protocols and optional
abilities); this module checks a class against it and checks the params against the
constructor's signature, both without constructing anything (no network at parse time).

Plugins know nothing of DAGs, tasks or XComs: they test without a scheduler, and plugins
written for the original Cloudmarker run unchanged.
"""

from __future__ import annotations

import collections.abc as abc
import functools
import importlib
import inspect
import json
import pkgutil
import reprlib
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_cloudmarker import contract

#: Config paths of the original project load the same classes from this package.
LEGACY_PREFIX = "cloudmarker."
PACKAGE_PREFIX = "airflow_cloudmarker."


class PluginError(Exception):
    """A plugin class cannot be loaded or does not accept its params; the message says why."""


class ParamTypeError(PluginError):
    """A param's value does not have the type the constructor annotates; ``param`` names it."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def resolve_path(class_path: str) -> str:
    """Map a ``cloudmarker.`` path to this package's module path; leave other paths alone."""
    if class_path.startswith(LEGACY_PREFIX):
        return PACKAGE_PREFIX + class_path[len(LEGACY_PREFIX) :]
    return class_path


def load_class(class_path: str) -> type:
    """Import ``module.Class`` (with the ``cloudmarker.`` alias) and return the class."""
    if not isinstance(class_path, str) or "." not in class_path:
        raise PluginError(f"{class_path!r} is not a dotted path such as cloudmarker.clouds.mockcloud.MockCloud")
    module_name, _, class_name = resolve_path(class_path).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PluginError(f"cannot import module {module_name!r} of {class_path!r}: {exc}") from exc
    except Exception as exc:  # a plugin module that fails while importing
        raise PluginError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise PluginError(f"module {module_name!r} has no class {class_name!r}") from exc
    if not inspect.isclass(cls):
        raise PluginError(f"{class_path!r} is not a class")
    return cls


def check_methods(cls: type, kind: str) -> None:
    """Raise ``PluginError`` when ``cls`` lacks a method of its ``kind``'s protocol (``contract.PROTOCOLS``)."""
    missing = contract.missing_methods(cls, kind)
    if missing:
        raise PluginError(
            f"{cls.__module__}.{cls.__qualname__} is used in {kind} but has no {', '.join(missing)}() method"
        )


def check_abilities(cls: type, kind: str) -> list[str]:
    """The problems of the optional abilities ``cls`` declares (``contract.ABILITIES``), each naming its fix."""
    return contract.ability_problems(cls, kind)


def check_params(cls: type, params: Mapping[str, Any]) -> None:
    """Check ``params`` against the constructor's signature, without calling it.

    Catches unknown and missing keyword arguments at parse time, with no network or side effects.
    """
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return  # builtins and C classes: nothing to check
    try:
        signature.bind(**dict(params))
    except TypeError as exc:
        accepted = [
            p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        hint = f"accepted params: {', '.join(accepted)}" if accepted else "it accepts no params"
        raise PluginError(f"{cls.__qualname__} does not accept these params ({exc}); {hint}") from exc


#: Annotations that take a YAML list (a string is refused, though Python calls it a Sequence).
_LIST_TYPES = (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection, abc.Set)
_MAP_TYPES = (dict, abc.Mapping, abc.MutableMapping)
_SCALARS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}
#: The annotations checked without looking inside (the common case, and each item of a long list).
_SIMPLE_CHECKS: dict[Any, Callable[[Any], bool]] = {
    str: lambda v: isinstance(v, str),
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    type(None): lambda v: v is None,
    None: lambda v: v is None,
    Any: lambda v: True,
    object: lambda v: True,
}
#: Only short strings are tried unquoted (a long one is not a mistyped number, and is not parsed again).
_UNQUOTE_MAX = 64
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


@functools.lru_cache(maxsize=256)
def param_hints(cls: type) -> dict[str, Any]:
    """The constructor's resolved param annotations; unannotated or unresolvable params are left out.

    String annotations (``from __future__ import annotations``) are resolved with
    ``typing.get_type_hints``; when one of them cannot be (a name imported only for type
    checkers), each is resolved on its own so the others are still checked.
    """
    init = getattr(cls, "__init__", None)
    if not inspect.isfunction(init):
        return {}  # object.__init__, a C class, a callable object: nothing annotated to check
    try:
        hints = typing.get_type_hints(init)
    except Exception:
        hints = {}
        for name, annotation in init.__annotations__.items():
            holder = types.SimpleNamespace(__annotations__={name: annotation})
            try:
                hints.update(typing.get_type_hints(holder, globalns=init.__globals__))
            except Exception:
                continue  # cannot be resolved: not checked
    hints.pop("return", None)
    return hints


def type_name(hint: Any) -> str:
    """``int``, ``list of str``, ``str or null``: how an error names the expected type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(dict.fromkeys(type_name(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if hint in _SCALARS:
        return _SCALARS[hint]
    base = origin or hint
    if base is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return f"list of {len(args)} values ({', '.join(type_name(a) for a in args)})"
    if base in _LIST_TYPES:
        return f"list of {type_name(args[0])}" if args and args[0] is not Any else "list"
    if base in _MAP_TYPES:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if len(args) == 2 else "mapping"
    return getattr(hint, "__name__", str(hint))


def matches(value: Any, hint: Any) -> bool:
    """True when a YAML value fits the annotation; annotations this does not know accept anything.

    ``float`` takes an int, ``int`` does not take a bool, list annotations take lists (not strings).
    """
    try:
        simple = _SIMPLE_CHECKS.get(hint)
    except TypeError:  # an unhashable annotation: not a simple one
        simple = None
    if simple is not None:
        return simple(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is typing.Annotated:
        return matches(value, args[0])
    base = origin or hint
    if base in _LIST_TYPES:
        return isinstance(value, (list, tuple)) and _items_match(value, base, args)
    if base in _MAP_TYPES:
        return isinstance(value, dict) and (
            len(args) != 2 or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        )
    return True


def _items_match(value: list | tuple, base: Any, args: tuple) -> bool:
    if not args:
        return True
    try:
        simple = _SIMPLE_CHECKS.get(args[0]) if base is not tuple or args[1:] == (Ellipsis,) else None
    except TypeError:
        simple = None
    if simple is not None:
        return all(map(simple, value))
    if base is tuple and not (len(args) == 2 and args[1] is Ellipsis):  # tuple[int, str]: one type per place
        return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args, strict=True))
    return all(matches(v, args[0]) for v in value)


def _yaml_kind(value: Any) -> str:
    for kind, name in ((bool, "true/false"), (int, "an integer"), (float, "a number"), (str, "a string")):
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    return {list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _type_fix(name: str, value: Any, hint: Any) -> str:
    """How to write the value: unquoted when the quoted text is itself a value of the right type."""
    if isinstance(value, str) and len(value) <= _UNQUOTE_MAX:
        import yaml

        try:
            unquoted = yaml.safe_load(value)
        except yaml.YAMLError:
            unquoted = value
        if not isinstance(unquoted, str) and matches(unquoted, hint):
            return f"write it without quotes: {name}: {value}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and matches(str(value), hint):
        return f"quote it: {name}: '{value}'"
    return f"set {name} to a value of type {type_name(hint)}"


def check_param_types(cls: type, params: Mapping[str, Any]) -> list[ParamTypeError]:
    """Each param whose value does not fit the constructor's annotation of it, as an error naming the fix.

    Checked at parse time so that ``record_count: "5"`` is reported before anything runs, not
    as a task failure after Airflow has started. Unannotated params take anything.
    """
    hints = param_hints(cls)
    problems = []
    for name, value in params.items():
        hint = hints.get(name)
        if hint is None or matches(value, hint):
            continue
        problems.append(
            ParamTypeError(
                f"{cls.__qualname__} param {name} must be {type_name(hint)}, not {_repr.repr(value)} "
                f"({_yaml_kind(value)}); {_type_fix(name, value, hint)}",
                name,
            )
        )
    return problems


def instantiate(cls: type, params: Mapping[str, Any]) -> Any:
    """Construct a plugin with its params as keyword arguments."""
    return cls(**dict(params))


# -- the built-in plugins, for ``cloudmarker --list-plugins`` and the docs ------------------------

#: The packages of built-in plugins and the audit lists each one's plugins may be used in.
BUILTIN_PACKAGES: dict[str, tuple[str, ...]] = {
    "clouds": ("clouds",),
    "events": ("events",),
    "stores": ("stores", "alerts"),
    "alerts": ("alerts",),
}


@dataclass(frozen=True)
class Param:
    """One constructor param of a plugin: its name, annotated type and default (as YAML would read it)."""

    name: str
    type: str
    required: bool
    default: Any = None


@dataclass(frozen=True)
class PluginInfo:
    """What ``--list-plugins`` shows of one plugin class."""

    cls: type
    #: The audit lists it may be used in (``clouds``; ``stores`` and ``alerts``; ...).
    kinds: tuple[str, ...]
    #: Its config path, ``cloudmarker.<package>.<module>.<Class>``.
    path: str
    summary: str
    params: tuple[Param, ...]
    #: The optional abilities it declares (``contract.ABILITIES``), each as a short phrase.
    abilities: tuple[str, ...]
    checks: tuple[contract.CheckMetadata, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (``--list-plugins --json``)."""
        return {
            "path": self.path,
            "kinds": list(self.kinds),
            "summary": self.summary,
            "params": [
                {
                    "name": p.name,
                    "type": p.type,
                    "required": p.required,
                    **({} if p.required else {"default": p.default}),
                }
                for p in self.params
            ],
            "abilities": list(self.abilities),
            "checks": [c.as_dict() for c in self.checks],
        }


def _yaml_ready(value: Any) -> Any:
    """A default as YAML would write it: tuples and sets as lists, anything unusual as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_yaml_ready(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _yaml_ready(v) for k, v in value.items()}
    return repr(value)


def constructor_params(cls: type) -> tuple[Param, ...]:
    """The keyword params of ``cls``'s constructor, with annotated types and defaults, in signature order."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return ()
    hints = param_hints(cls)
    params = []
    for p in signature.parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        shown = type_name(hints[p.name]) if p.name in hints else "any"
        if p.default is p.empty:
            params.append(Param(p.name, shown, True))
        else:
            params.append(Param(p.name, shown, False, _yaml_ready(p.default)))
    return tuple(params)


def declared_abilities(cls: type, kinds: Sequence[str]) -> tuple[str, ...]:
    """The optional abilities ``cls`` declares for any of ``kinds``, as phrases such as ``shards (8 at once)``."""
    shown = []
    for kind in kinds:
        if kind == "clouds" and contract.is_sharded(cls):
            shown.append(f"shards (at most {contract.max_parallel_shards(cls)} at once)")
        if kind in ("stores", "alerts"):
            if contract.keeps_every_event(cls):
                shown.append("keeps_every_event")
            if contract.abort_method(cls) is not None:
                shown.append("abort")
    return tuple(dict.fromkeys(shown))


def plugin_info(cls: type, kinds: Sequence[str]) -> PluginInfo:
    """What ``--list-plugins`` shows of ``cls`` when it may be used in the audit lists ``kinds``."""
    module = cls.__module__.removeprefix(PACKAGE_PREFIX)
    doc = inspect.getdoc(cls) or ""
    return PluginInfo(
        cls=cls,
        kinds=tuple(kinds),
        path=f"{LEGACY_PREFIX}{module}.{cls.__qualname__}",
        summary=doc.split("\n\n")[0].replace("\n", " ").replace("``", ""),
        params=constructor_params(cls),
        abilities=declared_abilities(cls, kinds),
        checks=contract.checks_of(cls) if "events" in kinds else (),
    )


def builtin_plugins() -> list[PluginInfo]:
    """Every plugin class of this package, in package and module order.

    A plugin is a public class of a public module of a plugin package that satisfies its kind's protocol.
    """
    infos = []
    for package, kinds in BUILTIN_PACKAGES.items():
        parent = importlib.import_module(f"{PACKAGE_PREFIX}{package}")
        for module_info in sorted(pkgutil.iter_modules(parent.__path__), key=lambda m: m.name):
            if module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{parent.__name__}.{module_info.name}")
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and value.__module__ == module.__name__
                    and not name.startswith("_")
                    and not contract.missing_methods(value, kinds[0])
                ):
                    infos.append(plugin_info(value, kinds))
    return infos


_KIND_LABELS = {"clouds": "cloud", "events": "event", "stores": "store", "alerts": "alert"}


def _shown(value: Any) -> str:
    """A default in the listing, written as in YAML: ``null``, ``true``, ``[foo, bar]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if value == "":
        return "''"
    return str(value)


def _wrapped(label: str, text: str, indent: int) -> list[str]:
    return textwrap.wrap(
        text, width=_LISTING_WIDTH, initial_indent=" " * indent + label, subsequent_indent=" " * (indent + 2)
    )


_LISTING_WIDTH = 110


def controls_text(check: contract.CheckMetadata) -> str:
    """``CIS Microsoft Azure Foundations 6.0.0: 7.1; ...``, or ``none`` (as the listing and docs write it)."""
    return check.controls_text()


def _check_lines(check: contract.CheckMetadata) -> list[str]:
    lines = [f"      check {check.check_id} ({check.severity}): {check.title}"]
    lines += _wrapped("resource type: ", check.resource_type, 8)
    lines += _wrapped("controls: ", controls_text(check), 8)
    lines += _wrapped("risk: ", check.risk, 8)
    lines += _wrapped("remediation: ", check.remediation, 8)
    lines += [f"        link: {link}" for link in check.links]
    return lines


def _plugin_lines(info: PluginInfo) -> list[str]:
    label = " / ".join(_KIND_LABELS[k] for k in info.kinds)
    lines = [f"{label:<13} {info.path}"]
    lines += _wrapped("", info.summary, 6)
    if info.params:
        width = max(len(p.name) for p in info.params)
        type_width = max(len(p.type) for p in info.params)
        for p in info.params:
            default = "(required)" if p.required else _shown(p.default)
            lines.append(f"        {p.name:<{width}}  {p.type:<{type_width}}  {default}".rstrip())
    else:
        lines.append("        (no params)")
    if info.abilities:
        lines.append(f"      abilities: {', '.join(info.abilities)}")
    for check in info.checks:
        lines += _check_lines(check)
    return lines


def listing_text(infos: Sequence[PluginInfo]) -> str:
    """The plugins as a readable table: kind and config path, summary, then each param's name, type and default."""
    lines = [
        "Built-in plugins: kind, config path (plugin: in the config), then each param's name, type and default.",
        "",
    ]
    for info in infos:
        lines += [*_plugin_lines(info), ""]
    return "\n".join(lines)


def listing_json(infos: Sequence[PluginInfo]) -> str:
    """The plugins as a JSON list (one object per plugin: path, kinds, params, abilities, checks)."""
    return json.dumps([info.as_dict() for info in infos], indent=2) + "\n"


def print_listing(as_json: bool = False) -> int:
    """``cloudmarker --list-plugins [--json]``: print every built-in plugin; the exit status."""
    infos = builtin_plugins()
    sys.stdout.write(listing_json(infos) if as_json else listing_text(infos))
    return 0

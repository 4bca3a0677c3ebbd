"""Load plugin classes by dotted path and check their params without constructing them.

A plugin is a plain class constructed with the config's ``params`` as keyword arguments:

* cloud: ``read()`` yields records; ``done()``. A cloud that can split its work (one
  subscription, one project) may also define ``shards()`` returning a list of small JSON values;
  the DAG then maps one fetch task per shard and calls ``read(shard)`` in each.
* event: ``eval(record)`` yields zero or more event records; ``done()``.
* store and alert (same interface): ``write(record)``; ``done()`` (flush, close).

Plugins know nothing of DAGs, tasks or XComs: they test without a scheduler, and plugins
written for the original Cloudmarker run unchanged.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

#: Config paths of the original project load the same classes from this package.
LEGACY_PREFIX = "cloudmarker."
PACKAGE_PREFIX = "airflow_cloudmarker."

#: Methods each kind of plugin must have.
REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "clouds": ("read", "done"),
    "events": ("eval", "done"),
    "stores": ("write", "done"),
    "alerts": ("write", "done"),
}


class PluginError(Exception):
    """A plugin class cannot be loaded or does not accept its params; the message says why."""


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
        raise PluginError(f"cannot import module {module_name!r} of {class_path!r}: {exc}") from None
    except Exception as exc:  # a plugin module that fails while importing
        raise PluginError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise PluginError(f"module {module_name!r} has no class {class_name!r}") from None
    if not inspect.isclass(cls):
        raise PluginError(f"{class_path!r} is not a class")
    return cls


def check_methods(cls: type, kind: str) -> None:
    """Raise ``PluginError`` when ``cls`` lacks a method its ``kind`` of plugin needs."""
    missing = [m for m in REQUIRED_METHODS[kind] if not callable(getattr(cls, m, None))]
    if missing:
        raise PluginError(
            f"{cls.__module__}.{cls.__qualname__} is used in {kind} but has no {', '.join(missing)}() method"
        )


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
        raise PluginError(f"{cls.__qualname__} does not accept these params ({exc}); {hint}") from None


def is_sharded(cls: type) -> bool:
    """True when a cloud plugin splits its work into shards fetched by mapped tasks."""
    return callable(getattr(cls, "shards", None))


def instantiate(cls: type, params: Mapping[str, Any]) -> Any:
    """Construct a plugin with its params as keyword arguments."""
    return cls(**dict(params))

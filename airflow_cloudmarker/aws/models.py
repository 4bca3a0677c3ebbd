"""One service model and one client class per AWS service for all the clients AwsCloud builds in a process.

(And one cache of event names per session: see ``share_event_names``.)

botocore builds each client from scratch: it wraps the service's JSON model (parsed once per
loader) in a new ``ServiceModel``, whose operation and shape objects are then built again on the
client's first calls, and it creates a new client class with one method per operation (EC2 has
about 800). AwsCloud needs a client per account and region, 51 EC2 clients for 3 accounts x 17
regions, so that work cost more CPU than the API calls themselves (about 7 ms and 10,000 objects
per EC2 client, plus the shapes of its first calls), and the garbage made Python's full
collections, about 0.2 s each in a process that has imported Airflow, run several times per fetch.

``share(loader)`` makes botocore's ``ClientCreator`` keep one ``ServiceModel`` per service and API
version, and one client class per service and session event emitter, for the clients of sessions
that use ``loader`` (AwsAccess gives all its sessions one loader). Clients of any other session in
the process (other hooks and operators) are built exactly as botocore builds them. Sharing is
safe: a ServiceModel changes only its caches after construction and is already shared by all the
threads calling one client; the class holds methods only, and it is kept per emitter, so the
``creating-client-class`` handlers of each session (boto3's injected methods) are applied as for an
uncached class. Handlers registered on a session after its first client of a service no longer
change that service's class: AwsAccess registers none.

It relies on two private ``ClientCreator`` methods (``_load_service_model`` and
``_create_client_class``, unchanged since botocore 1.4); when a botocore release no longer has them
with these parameters, ``share`` changes nothing and returns False, and clients are built the
ordinary way.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import weakref
from typing import Any

log = logging.getLogger(__name__)

#: loader -> {(service, api_version): ServiceModel}, for the loaders passed to ``share``.
_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: session event emitter -> {id(service model): (service model, client class)}.
_CLASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()  # held while a model or class is built: two threads never parse one JSON model twice
_PARAMS = {
    "_load_service_model": ["self", "service_name", "api_version"],
    "_create_client_class": ["self", "service_name", "service_model"],
}
_installed: bool | None = None


def share(loader: Any) -> bool:
    """Share service models and client classes among the clients of sessions whose data loader is ``loader``."""
    if not _install():
        return False
    with _LOCK:
        _MODELS.setdefault(loader, {})
    return True


def share_event_names(emitter: Any) -> bool:
    """Let the clients of a session share its cache of aliased event names (``emitter``: the session's EventAliaser).

    botocore gives every client a copy of the session's ``EventAliaser``, with an empty cache of
    the names it has translated (``before-call.ec2.DescribeVolumes`` and so on); a name not in it
    costs about 60 us (it is tried against each of some 40 aliases), and a client emits about a
    dozen names per call, each new to it. For 63 clients that was 4,000 misses, 0.24 s of CPU.
    The translation depends only on the aliases, which a copy keeps, so the copies of this
    emitter share its cache. Returns False (nothing changed) for an emitter of another kind.
    """
    from botocore.hooks import EventAliaser

    shared = _shared_names_aliaser()
    if type(emitter) is EventAliaser and isinstance(getattr(emitter, "_alias_name_cache", None), dict):
        emitter.__class__ = shared
    return isinstance(emitter, shared)


def forget() -> None:
    """Drop the shared models and classes (a fresh process has none); the next clients build them again."""
    with _LOCK:
        _MODELS.clear()
        _CLASSES.clear()


def _install() -> bool:
    global _installed
    with _LOCK:
        if _installed is None:
            _installed = _patch()
        return _installed


def _patch() -> bool:
    from botocore.client import ClientCreator

    originals = {name: getattr(ClientCreator, name, None) for name in _PARAMS}
    for name, method in originals.items():
        if method is None or list(inspect.signature(method).parameters) != _PARAMS[name]:
            log.info("botocore %s differs from what AwsCloud knows; clients are built unshared", name)
            return False
    load_model, make_class = originals["_load_service_model"], originals["_create_client_class"]

    def _load_service_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        models = _MODELS.get(self._loader)
        if models is None:
            return load_model(self, service_name, api_version)
        key = (service_name, api_version)
        model = models.get(key)
        if model is None:
            with _LOCK:
                model = models.get(key)
                if model is None:
                    model = models[key] = load_model(self, service_name, api_version)
        return model

    def _create_client_class(self: Any, service_name: str, service_model: Any) -> Any:
        models = _MODELS.get(self._loader)
        if models is None:
            return make_class(self, service_name, service_model)
        with _LOCK:  # another thread may be adding a model: the values are read under the lock
            shared = any(model is service_model for model in models.values())
        if not shared:
            return make_class(self, service_name, service_model)
        with _LOCK:
            classes = _CLASSES.setdefault(self._event_emitter, {})
            cached = classes.get(id(service_model))
            if cached is None or cached[0] is not service_model:
                cached = classes[id(service_model)] = (service_model, make_class(self, service_name, service_model))
        return cached[1]

    ClientCreator._load_service_model = _load_service_model
    ClientCreator._create_client_class = _create_client_class
    return True


@functools.cache
def _shared_names_aliaser() -> type:
    """The EventAliaser subclass of ``share_event_names`` (made on first use: botocore is imported late)."""
    from botocore.hooks import EventAliaser

    class SharedNamesAliaser(EventAliaser):
        """An EventAliaser whose copies (one per client) share its cache of translated event names."""

        def __copy__(self) -> Any:
            copied = super().__copy__()
            if copied._event_aliases == self._event_aliases:
                copied._alias_name_cache = self._alias_name_cache
            return copied

    return SharedNamesAliaser

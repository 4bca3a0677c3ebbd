"""Make ``dag.test()``'s in-process Execution API answer in a millisecond instead of twenty.

Every task call of ``cloudmarker -n`` (each XCom pushed or pulled, each state change) is a request
to Airflow's in-process Execution API, a FastAPI app. Airflow's ``InProcessExecutionAPI``
overrides four of its dependencies (authentication), and while ``app.dependency_overrides`` is
not empty FastAPI rebuilds the dependency graph of every request from the endpoint signatures
(``get_dependant`` in ``solve_dependencies``, which builds pydantic schemas): about 20 ms a
request here, measured with ``bench/bench_xcom.py``, so about 10 s of a mock audit of a million
records went to it. A known FastAPI problem (fastapi/fastapi#8402; PRs #14441, #16342).

``speed_up_dependency_overrides`` memoizes ``get_dependant`` for the calls made with the same
arguments, which is what FastAPI does anyway for a route without overrides: it builds each
``Dependant`` once, when the route is declared, and reuses it for every request. It is applied
only in the process of ``cloudmarker -n``, and only to the FastAPI it was written against (the
keyword-only signature checked below); otherwise FastAPI is left as it is.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

_EXPECTED_PARAMETERS = ("path", "call", "name", "own_oauth_scopes", "parent_oauth_scopes", "use_cache", "scope")


def speed_up_dependency_overrides() -> bool:
    """Memoize FastAPI's ``get_dependant`` where ``solve_dependencies`` calls it; True when applied."""
    try:
        from fastapi.dependencies import utils
    except ImportError:
        return False
    original = utils.get_dependant
    if getattr(original, "cloudmarker_memoized", False):
        return True
    parameters = inspect.signature(original).parameters
    keyword_only = all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    if tuple(parameters) != _EXPECTED_PARAMETERS or not keyword_only:
        log.debug("FastAPI's get_dependant has parameters %s; not memoized", tuple(parameters))
        return False
    built: dict[tuple, Any] = {}

    @functools.wraps(original)
    def get_dependant(**kwargs: Any) -> Any:
        try:
            key = tuple(tuple(v) if isinstance(v, list) else v for v in (kwargs.get(n) for n in _EXPECTED_PARAMETERS))
            hash(key)
        except TypeError:  # an unhashable callable: build it, as FastAPI would
            return original(**kwargs)
        dependant = built.get(key)
        if dependant is None:
            dependant = built[key] = original(**kwargs)
        return dependant

    get_dependant.cloudmarker_memoized = True  # type: ignore[attr-defined]
    utils.get_dependant = get_dependant
    return True

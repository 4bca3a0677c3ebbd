"""Helpers for the integration tests of the Azure management-plane plugins against ``FakeAzure``.

``estate`` starts a server with the given families' resources (``tests/servers/azure_<family>.py``)
and makes the SDK trust it; ``params`` are the plugin params that point at it.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from servers.azure import FakeAzure

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import pytest


@contextmanager
def estate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *populate: Callable[[FakeAzure], None], **kwargs: Any
) -> Iterator[FakeAzure]:
    """A running ``FakeAzure`` (2 subscriptions, pages of 2 unless ``kwargs`` say otherwise) filled by ``populate``."""
    options = {"subscriptions": 2, "page_size": 2, **kwargs}
    with FakeAzure(tmp_path / "ca", **options) as az:
        for fill in populate:
            fill(az)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", az.ca_file)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield az


def params(az: FakeAzure, **extra: Any) -> dict[str, Any]:
    """Plugin params for the service principal and endpoints of ``az`` (no retry backoff)."""
    return {
        "tenant": az.tenant,
        "client": az.client,
        "secret": az.secret,
        "authority_host": az.url,
        "resource_manager_url": az.url,
        "retry_backoff": 0,
        **extra,
    }


def read_all(cloud: Any) -> list[dict]:
    """Every record of ``cloud`` as the DAG reads them: ``shards()``, then ``read(shard)`` for each."""
    try:
        return [record for shard in cloud.shards() for record in cloud.read(shard)]
    finally:
        cloud.done()


def arm_gets(az: FakeAzure) -> Counter:
    """GET requests per lower-case ARM path (not login, not the subscription reads)."""
    return Counter(
        path.lower()
        for method, path, _ in az.arm_calls()
        if method == "GET" and path.count("/") > 2  # /subscriptions/{id} alone is the subscription read
    )

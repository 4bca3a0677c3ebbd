"""Plugins used by the tests: a cloud that fails half-way and a cloud that shards its work.

They are real plugins of the public protocol (any importable ``module.Class`` works), not
stand-ins for the framework's own code.
"""

from __future__ import annotations


class FailingCloud:
    """Yields ``fail_after`` records, then raises, like a cloud API failing mid-way."""

    def __init__(self, fail_after: int = 3):
        self._fail_after = fail_after

    def read(self):
        for i in range(self._fail_after):
            yield {"raw": {"data": i}, "ext": {"record_type": "partial"}, "com": {"record_type": "mock"}}
        raise ConnectionError("cloud API went away")

    def done(self):
        pass


class ShardedCloud:
    """Splits its records over ``shard_count`` shards, each fetched by its own mapped task."""

    def __init__(self, shard_count: int = 3, records_per_shard: int = 4):
        self._shard_count = shard_count
        self._per_shard = records_per_shard

    def shards(self):
        return [f"shard-{i}" for i in range(self._shard_count)]

    def read(self, shard):
        index = int(shard.split("-")[1])
        for i in range(self._per_shard):
            yield {
                "raw": {"data": index * self._per_shard + i, "shard": shard},
                "ext": {"record_type": "sharded"},
                "com": {"record_type": "mock"},
            }

    def done(self):
        pass


class FailingEvent:
    """An event plugin that raises on the first record."""

    def eval(self, record):
        raise ValueError("event plugin bug")

    def done(self):
        pass


class FailingStore:
    """A store whose destination is down."""

    def write(self, record):
        raise ConnectionRefusedError("store server is down")

    def done(self):
        pass

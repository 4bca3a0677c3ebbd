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
    """Splits its records over ``shard_count`` shards, each fetched by its own mapped task.

    ``seconds`` makes each shard slow: long enough to kill a Celery worker mid-task.
    """

    def __init__(self, shard_count: int = 3, records_per_shard: int = 4, seconds: float = 0.0):
        self._shard_count = shard_count
        self._per_shard = records_per_shard
        self._seconds = seconds

    def shards(self):
        return [f"shard-{i}" for i in range(self._shard_count)]

    def read(self, shard):
        import time

        time.sleep(self._seconds)
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


class RecordsFromFile:
    """A cloud whose records are a JSON file the test rewrites between runs (changing cloud data)."""

    def __init__(self, path: str, fail: bool = False):
        self._path = path
        self._fail = fail

    def read(self):
        import json

        with open(self._path) as f:
            records = json.load(f)
        yield from records
        if self._fail:
            raise ConnectionError("cloud API went away")

    def done(self):
        pass


class RecordingAlert:
    """An alert (not a store) that appends what it receives to a JSON-lines file."""

    def __init__(self, path: str):
        self._path = path
        self._events = []

    def write(self, record):
        self._events.append(record)

    def done(self):
        import json

        with open(self._path, "a") as f:
            f.write(json.dumps(self._events) + "\n")


class FlakyCloud:
    """Fails its first try half-way (after some batches were pushed), succeeds when retried."""

    def __init__(self, marker: str, record_count: int = 10):
        self._marker = marker
        self._count = record_count

    def read(self):
        import os

        first_try = not os.path.exists(self._marker)
        for i in range(self._count):
            if first_try and i == self._count // 2:
                open(self._marker, "w").close()
                raise ConnectionResetError("connection reset mid-way")
            yield {"raw": {"data": i}, "ext": {"record_type": "flaky"}, "com": {"record_type": "mock"}}

    def done(self):
        pass

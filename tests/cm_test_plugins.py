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
    """Splits its records over ``shard_count`` shards, read in groups by mapped fetch tasks.

    ``seconds`` makes each shard slow: long enough to kill a Celery worker mid-task. The shards
    named in ``fail_shards`` raise after their first record, like a subscription whose API fails.
    """

    def __init__(
        self, shard_count: int = 3, records_per_shard: int = 4, seconds: float = 0.0, fail_shards: list | None = None
    ):
        self._shard_count = shard_count
        self._per_shard = records_per_shard
        self._seconds = seconds
        self._fail = set(fail_shards or ())
        self._reads = 0

    def shards(self):
        return [f"shard-{i}" for i in range(self._shard_count)]

    def read(self, shard):
        import time

        time.sleep(self._seconds)
        self._reads += 1
        if self._reads > 1:
            raise RuntimeError("one instance read two shards; the contract promises a fresh instance per shard")
        index = int(shard.split("-")[1])
        for i in range(self._per_shard):
            if i == 1 and shard in self._fail:
                raise ConnectionError(f"the API of {shard} went away")
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


def _deep(levels: int):
    value: object = "bottom"
    for _ in range(levels):
        value = [value]
    return value


class HostileCloud:
    """Good records around each kind of record a real cloud API can hand over and JSON cannot carry.

    Records 0, 4 and 9 are clean; 1 holds a lone surrogate (what JSON-decoding ``"\\ud800"`` gives),
    2 integers orjson refuses, 3 nesting 1,000 levels deep, 5 a dict that refers to itself and 8 a
    set with a surrogate in it; 6 is not a dict and 7 has a ``com`` that is not a dict (both skipped).
    """

    def read(self):
        def record(data, **raw):
            return {"raw": {"data": data, **raw}, "ext": {"record_type": "hostile"}, "com": {"record_type": "mock"}}

        yield record(0)
        yield record(1, name="caf\ud800e")
        yield record(2, size=2**64, delta=-(2**63) - 1, ok=2**64 - 1)
        yield record(3, deep=_deep(1000))
        yield record(4)
        looped = record(5)
        looped["raw"]["parent"] = looped["raw"]
        yield looped
        yield "not a record"
        yield {"raw": {"data": 7}, "com": "not a dict"}
        yield record(8, tags={"a\udc80"})
        yield record(9)

    def done(self):
        pass


class HostileEvent:
    """For each record: an event whose description holds a lone surrogate, and a string that is no event."""

    def eval(self, record):
        data = record["raw"]["data"]
        yield {
            "ext": {"record_type": "hostile_event", "data": data},
            "com": {"record_type": "hostile_event", "reference": str(data), "description": f"bad \udfff {data}"},
        }
        yield f"not an event {data}"

    def done(self):
        pass


class RaisingEvent:
    """An event for every record; on records whose ``raw.data`` is in ``fail_on`` it yields one, then raises.

    The event it yields before raising must not be delivered: a record's events are all or none.
    """

    def __init__(self, fail_on: list | None = None):
        self._fail_on = set(fail_on or [])

    def eval(self, record):
        data = record["raw"]["data"]
        yield {
            "ext": {"record_type": "raising_event", "data": data, "partial": data in self._fail_on},
            "com": {"record_type": "raising_event", "reference": f"ref-{data}", "description": f"{data} seen"},
        }
        if data in self._fail_on:
            raise KeyError(f"no field for {data}")

    def done(self):
        pass


class SlowStore:
    """A store that, at its first record, touches ``marker`` and then takes ``seconds``: a run to kill or interrupt.

    By then the fetch tasks have pushed their record batches, so a killed run leaves them behind.
    """

    def __init__(self, marker: str, seconds: float = 60.0):
        self._marker = marker
        self._seconds = seconds
        self._started = False

    def write(self, record):
        if not self._started:
            import pathlib
            import time

            self._started = True
            pathlib.Path(self._marker).touch()
            time.sleep(self._seconds)

    def done(self):
        pass

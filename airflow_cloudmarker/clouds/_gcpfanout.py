"""Run one generator per item in a few threads and stream their output to one consumer.

GCPCloud reads several projects at once outside Airflow's task mapping (``read()`` without a
shard, or a shard holding a batch of projects). API calls wait on the network, so threads give
the concurrency; a bounded queue keeps memory flat, because the consumer (the fetch task writing
batches) takes records as they come instead of after every project is done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
QUEUE_SIZE = 1000
_RECORD, _ERROR, _DONE = "record", "error", "done"


def fan_out(produce: Callable[[T], Iterable[Any]], items: list[T], workers: int) -> Iterator[Any]:
    """Yield everything ``produce(item)`` yields, for every item, with ``workers`` threads.

    The first exception of any worker is raised in the consumer, and the other workers stop at
    their next record. Order within one item is kept; items interleave.
    """
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield from produce(item)
        return
    channel: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                channel.put(message, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(item: T) -> None:
        try:
            for value in produce(item):
                if not put((_RECORD, value)):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put((_ERROR, exc))
        finally:
            put((_DONE, None))

    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="gcp")
    try:
        for item in items:
            pool.submit(run, item)
        remaining = len(items)
        while remaining:
            kind, value = channel.get()
            if kind == _RECORD:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                remaining -= 1
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)

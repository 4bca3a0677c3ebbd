"""Threads kept for reuse: a fetch task reads thousands of shards, and each read ran on threads of its own.

Starting a thread costs CPU and the GIL, and a pool per read started them by the thousand: a tenant
of 2,000 subscriptions, read 8 at a time on 8 threads each, started 16,000 (issue 17). ``THREADS``
hands a function to an idle kept thread, or starts one when none is idle; a thread idle for
``IDLE_SECONDS`` ends. There is no bound and no queue: a function never waits behind a busy thread,
so nested users (a fetch task's shards, each reading its own jobs) cannot deadlock, and each user
bounds its own concurrency (``run_in_order``).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: A kept thread that had nothing to do for this long ends (the next user starts a new one).
IDLE_SECONDS = 30.0


class ThreadCache:
    """Daemon threads that run one function after another, reused while they are busy enough to stay."""

    def __init__(self, name: str, idle_seconds: float = IDLE_SECONDS):
        self._name = name
        self._idle_seconds = idle_seconds
        self._numbers = itertools.count(1)
        self._forget()
        # A forked child has none of the parent's threads: it must not hand work to their inboxes.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []  # the inboxes of the threads waiting for work

    def run(self, function: Callable[[], None]) -> None:
        """Run ``function`` on a kept thread (it must handle its own errors: one escaping is dropped)."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            name = f"{self._name}_{next(self._numbers)}"
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put(function)

    def idle(self) -> int:
        """How many kept threads are waiting for work."""
        with self._lock:
            return len(self._idle)

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            try:
                function = inbox.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if any(waiting is inbox for waiting in self._idle):
                        self._idle.remove(inbox)
                        return
                function = inbox.get()  # ``run`` took this thread just now: its function is on the way
            with contextlib.suppress(BaseException):  # the function's own business: the thread goes on
                function()
            del function  # hold nothing of the finished work while idle
            with self._lock:
                self._idle.append(inbox)


THREADS = ThreadCache("cloudmarker")


def run_in_order(jobs: Sequence[Callable[[], None]], threads: int, stop: threading.Event) -> Callable[[], None]:
    """Start ``jobs`` on at most ``threads`` kept threads, in their order; return the function that waits for them.

    Like a ``ThreadPoolExecutor`` of ``threads`` workers: the first job is taken first, and each
    thread takes the next job when its last one ends. Once ``stop`` is set, jobs not yet taken are
    dropped. The returned function returns when every started job has ended. Each job handles its
    own errors (one that raises ends its thread's share of the work).
    """
    pending = collections.deque(jobs)
    count = max(1, min(threads, len(pending)))
    ended = threading.Semaphore(0)

    def take_jobs() -> None:
        try:
            while not stop.is_set():
                try:
                    job = pending.popleft()
                except IndexError:
                    return
                job()
        finally:
            ended.release()

    started = 0
    try:
        for _ in range(count):
            THREADS.run(take_jobs)
            started += 1
    except BaseException:  # no thread to be had: let the started ones end, then fail
        stop.set()
        for _ in range(started):
            ended.acquire()
        raise

    def wait() -> None:
        for _ in range(count):
            ended.acquire()

    return wait

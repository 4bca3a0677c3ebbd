"""Kept threads: reused between calls, bounded per caller, ended when idle, never a deadlock when nested."""

from __future__ import annotations

import threading
import time

from airflow_cloudmarker import util, workers


def test_jobs_start_in_order_on_at_most_threads_threads():
    started: list[int] = []
    running = [0]
    most = [0]
    lock = threading.Lock()

    def job(number: int):
        def run() -> None:
            with lock:
                started.append(number)
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

        return run

    wait = workers.run_in_order([job(n) for n in range(12)], 3, threading.Event())
    wait()
    assert started[0] == 0 and sorted(started) == list(range(12))
    assert most[0] == 3


def test_a_set_stop_drops_the_jobs_not_yet_taken():
    stop = threading.Event()
    ran: list[int] = []

    def job(number: int):
        def run() -> None:
            ran.append(number)
            stop.set()

        return run

    workers.run_in_order([job(n) for n in range(10)], 1, stop)()
    assert ran == [0]


def test_threads_are_reused_and_an_idle_one_ends():
    cache = workers.ThreadCache("test-cache", idle_seconds=0.2)
    names: list[str] = []
    done = threading.Event()
    for _ in range(3):
        done.clear()
        cache.run(lambda: (names.append(threading.current_thread().name), done.set()))
        assert done.wait(5)
        deadline = time.monotonic() + 5
        while cache.idle() != 1 and time.monotonic() < deadline:  # back among the idle ones
            time.sleep(0.01)
    assert names == ["test-cache_1"] * 3  # one thread for the three calls
    deadline = time.monotonic() + 5
    while cache.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.idle() == 0  # it ended after idling
    assert not [t for t in threading.enumerate() if t.name == "test-cache_1"]


def test_an_error_does_not_end_the_kept_thread():
    cache = workers.ThreadCache("test-errors")
    done = threading.Event()
    cache.run(lambda: 1 / 0)
    cache.run(done.set)
    assert done.wait(5)


def test_nested_stream_parallel_does_not_deadlock():
    """A fetch task's shards, each reading its own jobs: both levels draw threads from the same cache."""

    def shard(number: int):
        def read():
            return util.stream_parallel([lambda n=n: [(number, n)] for n in range(5)], 5)

        return read

    items = list(util.stream_parallel([shard(s) for s in range(8)], 8))
    assert sorted(items) == [(s, n) for s in range(8) for n in range(5)]


def test_closing_stream_parallel_early_stops_its_jobs():
    started = []

    def job(number: int):
        def run():
            started.append(number)
            yield from range(1000)

        return run

    stream = util.stream_parallel([job(n) for n in range(50)], 2, buffer=1)
    assert next(stream) in range(1000)
    stream.close()  # the consumer is gone: the running jobs stop, the others never start
    assert len(started) < 50


def test_a_forked_child_starts_its_own_threads():
    """The parent's kept threads do not exist in a fork: work handed to them would never run."""
    import os

    cache = workers.ThreadCache("test-fork")
    done = threading.Event()
    cache.run(done.set)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while cache.idle() != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one idle thread in the parent, none here
        ran = threading.Event()
        cache.run(ran.set)
        os.write(write, b"1" if ran.wait(5) and cache.idle() <= 1 else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"

"""gcp.api.Prefetched: pages one ahead on a shared pool, in order, once each; never stuck behind a busy pool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_cloudmarker.gcp.api import Prefetched


def pages(count: int, produced: list, fail_at: int | None = None):
    for number in range(1, count + 1):
        if number == fail_at:
            raise RuntimeError(f"page {number} failed")
        produced.append((number, threading.current_thread().name))
        yield [number]


def test_pages_in_order_once_each_and_at_most_one_ahead():
    produced: list = []
    with ThreadPoolExecutor(2, thread_name_prefix="prefetch") as pool:
        reading = iter(Prefetched(pool.submit, pages(4, produced)))
        assert next(reading) == [1]
        time.sleep(0.2)  # the pool may fetch page 2 meanwhile, never page 3
        assert [n for n, _ in produced] in ([1], [1, 2])
        assert list(reading) == [[2], [3], [4]]
    assert [n for n, _ in produced] == [1, 2, 3, 4]


def test_the_first_page_is_requested_on_creation():
    produced: list = []
    with ThreadPoolExecutor(1) as pool:
        Prefetched(pool.submit, pages(3, produced))
    assert [n for n, _ in produced] == [1]


def test_an_error_is_raised_where_its_page_is_read():
    produced: list = []
    with ThreadPoolExecutor(1) as pool:
        reading = iter(Prefetched(pool.submit, pages(3, produced, fail_at=2)))
        assert next(reading) == [1]
        with pytest.raises(RuntimeError, match="page 2 failed"):
            next(reading)


def test_a_busy_pool_makes_the_reader_fetch_its_pages_itself():
    produced: list = []
    release = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="busy") as pool:
        pool.submit(release.wait)  # the only prefetch thread is taken
        assert list(Prefetched(pool.submit, pages(3, produced))) == [[1], [2], [3]]
        release.set()
    assert {thread for _, thread in produced} == {threading.current_thread().name}

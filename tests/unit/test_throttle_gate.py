"""ARM throttling: Retry-After honoured per subscription by one gate, on a fake clock."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from airflow_cloudmarker.azure import arm


class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_throttled_subscription_waits_and_the_others_do_not():
    clock = Clock()
    gate = arm.ThrottleGate(clock, clock.sleep)
    gate.hold("hot", 2.0)
    assert gate.delay("hot") == 2.0 and gate.delay("cold") == 0.0
    assert gate.wait("cold") == 0.0 and clock.slept == []
    clock.now += 0.5
    assert gate.wait("hot") == 1.5 and clock.slept == [1.5]
    assert gate.delay("hot") == 0.0  # waited out: the next call goes at once


def test_a_later_deadline_wins_and_an_earlier_one_does_not_shorten_it():
    clock = Clock()
    gate = arm.ThrottleGate(clock, clock.sleep)
    gate.hold("s", 5.0)
    gate.hold("s", 1.0)
    assert gate.delay("s") == 5.0
    gate.hold("s", 10_000)  # a hostile or broken Retry-After is capped
    assert gate.delay("s") == arm.MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_as_seconds(value, seconds):
    assert arm.retry_after_seconds(value) == seconds


def test_retry_after_as_an_http_date():
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    seconds = arm.retry_after_seconds(email.utils.format_datetime(when, usegmt=True))
    assert seconds is not None and 28 <= seconds <= 30


@pytest.mark.parametrize(
    ("url", "sub"),
    [
        ("https://management.azure.com/subscriptions/ABC-1/providers/Microsoft.Compute/virtualMachines", "abc-1"),
        ("https://x/subscriptions/s2?api-version=2022-12-01", "s2"),
        ("https://management.azure.com/subscriptions?api-version=2022-12-01", None),
    ],
)
def test_the_subscription_of_an_arm_url(url, sub):
    assert arm.subscription_of(url) == sub

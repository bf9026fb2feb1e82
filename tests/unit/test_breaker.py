"""The circuit breaker's state machine (seed 004: 5 failures, open 60 s, one probe)."""

import pytest

from practice.breaker import CircuitBreaker, CircuitOpen


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, open_seconds=60, clock=clock)
    for _ in range(4):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as raised:
        breaker.before_call()
    assert raised.value.retry_after == 60


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3, open_seconds=60, clock=FakeClock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed"


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, open_seconds=60, clock=clock)
    breaker.record_failure()
    clock.now = 30
    assert breaker.retry_after() == 30
    clock.now = 60
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the probe is out
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_a_failed_probe_opens_again_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, open_seconds=60, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now = 61
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    assert breaker.retry_after() == 60

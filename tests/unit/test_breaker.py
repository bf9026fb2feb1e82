"""The circuit breaker's state machine: 5 failures open it, one probe at a time,
a window that starts short and grows only while probes fail."""

import pytest

from practice.core.breaker import CircuitBreaker, CircuitOpen


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker_with(clock: FakeClock, threshold: int = 5) -> CircuitBreaker:
    return CircuitBreaker(threshold, max_open_seconds=60, first_open_seconds=1, clock=clock)


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = breaker_with(clock)
    for _ in range(4):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as raised:
        breaker.before_call()
    assert raised.value.retry_after == 1


def test_a_success_resets_the_count() -> None:
    breaker = breaker_with(FakeClock(), threshold=3)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed"


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = breaker_with(clock, threshold=1)
    breaker.record_failure()
    clock.now = 0.5
    assert breaker.state == "open"
    clock.now = 1.0
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the probe is out
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_the_window_doubles_while_probes_fail_up_to_its_ceiling() -> None:
    clock = FakeClock()
    breaker = breaker_with(clock)
    for _ in range(5):
        breaker.record_failure()
    windows = []
    for _ in range(8):
        clock.now += breaker.retry_after()
        breaker.before_call()  # the probe goes out
        breaker.record_failure()
        windows.append(breaker.retry_after())
    assert windows == [2, 4, 8, 16, 32, 60, 60, 60]


def test_a_late_failure_of_an_old_request_does_not_push_the_window_out() -> None:
    clock = FakeClock()
    breaker = breaker_with(clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now = 0.9
    breaker.record_failure()  # began before the breaker opened, failed just now
    clock.now = 1.0
    assert breaker.state == "half_open"


def test_a_health_probe_that_fails_reopens_and_one_that_succeeds_closes() -> None:
    clock = FakeClock()
    breaker = breaker_with(clock)
    for _ in range(5):
        breaker.record_failure()
    breaker.record_failure(probe=True)
    assert (breaker.state, breaker.retry_after()) == ("open", 2)
    breaker.record_success()
    assert breaker.state == "closed"

"""The circuit breaker in front of the database: after repeated failures it answers
"unavailable" at once instead of letting every request wait out a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from practice.errors import Unavailable


class CircuitOpen(Unavailable):
    """The breaker is open: the database is treated as down without trying it."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures, stays open ``open_seconds``,
    then lets one probe through: success closes it, failure opens it again.

    Written here rather than taken from pybreaker because pybreaker holds its
    lock for the whole protected call, which would serialise every query of a
    threaded caller (the local gateway, the concurrency tests).
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self, threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at < self.open_seconds:
            return self.OPEN
        return self.HALF_OPEN

    def retry_after(self) -> int:
        """Whole seconds until the breaker lets a probe through."""
        with self._lock:
            if self._opened_at is None:
                return 0
            left = self.open_seconds - (self._clock() - self._opened_at)
            return max(1, int(left + 0.999))

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go to the database now."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return
            if state == self.HALF_OPEN and not self._probing:
                self._probing = True
                return
        raise CircuitOpen("the database is unavailable", retry_after=self.retry_after())

    def record_success(self) -> None:
        """A call reached the database: close the breaker."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        """A call could not reach the database: count it, open when over the threshold."""
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._probing = False

    def snapshot(self) -> dict[str, Any]:
        """State and counters, for health and optimization endpoints."""
        with self._lock:
            return {
                "state": self._state(),
                "consecutive_failures": self._failures,
                "threshold": self.threshold,
                "open_seconds": self.open_seconds,
            }

"""The circuit breaker in front of the database: after repeated failures it answers
"unavailable" at once instead of letting every request wait out a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from practice.core.errors import Unavailable


class CircuitOpen(Unavailable):
    """The breaker is open: the database is treated as down without trying it."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures, then lets one probe through
    each time its open window has passed: success closes it, failure opens it
    again for twice as long, up to ``max_open_seconds``.

    The window starts at ``first_open_seconds`` so a container is serving again
    within moments of the database's return, and grows only while probes keep
    failing. Failures of requests that began before it opened do not reopen it
    (they would push the window out while the database is back).

    Written here rather than taken from pybreaker because pybreaker holds its
    lock for the whole protected call, which would serialise every query of a
    threaded caller (the local gateway, the concurrency tests).
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        threshold: int,
        max_open_seconds: float,
        first_open_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.max_open_seconds = max_open_seconds
        self.first_open_seconds = min(first_open_seconds, max_open_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._window = self.first_open_seconds
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at < self._window:
            return self.OPEN
        return self.HALF_OPEN

    def retry_after(self) -> int:
        """Whole seconds until the breaker lets a probe through (at least 1)."""
        with self._lock:
            if self._opened_at is None:
                return 1
            left = self._window - (self._clock() - self._opened_at)
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
            self._window = self.first_open_seconds
            self._probing = False

    def record_failure(self, *, probe: bool = False) -> None:
        """A call could not reach the database: count it, open when over the
        threshold; a failed probe (``probe`` or the half-open call) reopens it
        for a longer window."""
        with self._lock:
            self._failures += 1
            if self._probing or (probe and self._opened_at is not None):
                self._window = min(self._window * 2, self.max_open_seconds)
                self._opened_at = self._clock()
            elif self._opened_at is None and self._failures >= self.threshold:
                self._window = self.first_open_seconds
                self._opened_at = self._clock()
            self._probing = False

    def snapshot(self) -> dict[str, Any]:
        """State and counters, for the operators' report."""
        with self._lock:
            return {
                "state": self._state(),
                "consecutive_failures": self._failures,
                "threshold": self.threshold,
                "open_seconds": self._window,
            }

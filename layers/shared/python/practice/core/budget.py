"""The time a request may still spend: set once per invocation from the Lambda
context, read by everything that waits (the pool, retries, statement timeouts),
so a request answers, with a 503 if need be, before the function times out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_deadline: ContextVar[float | None] = ContextVar("practice_deadline", default=None)

# What the function keeps for itself after the budget: answering, logging, metrics.
SAFETY_MARGIN_SECONDS = 1.0


@contextmanager
def request_budget(context: Any, ceiling: float) -> Iterator[None]:
    """Within this block, waits end by ``ceiling`` seconds from now, or earlier
    when the Lambda context says the invocation has less time left."""
    seconds = ceiling
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        seconds = min(seconds, remaining_ms() / 1000 - SAFETY_MARGIN_SECONDS)
    token = _deadline.set(time.monotonic() + max(seconds, 0.0))
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left(default: float) -> float:
    """Seconds left in the current request's budget (``default`` outside one)."""
    deadline = _deadline.get()
    return default if deadline is None else deadline - time.monotonic()

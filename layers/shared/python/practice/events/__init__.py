"""The adapter for functions started by a schedule or a queue, beside ``web``
for HTTP: each builds a Lambda handler inside the shared entry point (logging
with a correlation id per event, tracing, metrics, the time budget), and hands
the domain its typed input and the system principal."""

from practice.events.queue import Permanent, consume_queue
from practice.events.schedule import Scheduled, on_schedule

__all__ = ["Permanent", "Scheduled", "consume_queue", "on_schedule"]

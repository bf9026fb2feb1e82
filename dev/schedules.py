"""What EventBridge would trigger on its own, locally: each Schedule event of
the template fired on demand (``python -m dev schedule <name>``), and the
``rate(...)`` ones fired on their period while ``make dev`` runs (cron ones are
for ``schedule`` to fire: a laptop is rarely up at 02:00)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dev.template import ACCOUNT_ID, REGION, Schedule


def scheduled_event(schedule: Schedule, now: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends for ``schedule``: its Input when the template
    gives one, else EventBridge's own scheduled event (``version`` included, which
    ``sam local generate-event`` leaves out)."""
    if schedule.input is not None:
        return schedule.input
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rule = (
        f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{schedule.function.logical_id}-{schedule.name}"
    )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at,
        "region": REGION,
        "resources": [rule],
        "detail": {},
    }


def find_schedule(schedules: list[Schedule], name: str) -> Schedule:
    """The schedule by its event name (``SweepDedupe``), case-insensitively."""
    for schedule in schedules:
        if schedule.name.lower() == name.lower():
            return schedule
    known = ", ".join(s.name for s in schedules) or "none"
    raise KeyError(f"no schedule {name!r}; the template has {known}")


class Scheduler:
    """Fires every ``rate(...)`` schedule on its period, in a thread of its own."""

    def __init__(
        self,
        schedules: list[Schedule],
        fire: Callable[[Schedule], object],
        log: Callable[[str], None],
        period: Callable[[Schedule], float | None] = lambda schedule: schedule.rate_seconds,
    ) -> None:
        self.periodic = [(s, period(s)) for s in schedules if period(s)]
        self.fire, self.log = fire, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)

    def start(self) -> Scheduler:
        """Start firing; returns self."""
        if self.periodic:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop firing (a run in progress finishes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        due = {s.name: time.monotonic() + period for s, period in self.periodic}
        while not self._stop.is_set():
            now = time.monotonic()
            for schedule, period in self.periodic:
                if now >= due[schedule.name]:
                    due[schedule.name] = now + period
                    try:
                        self.fire(schedule)
                    except Exception as exc:  # a failed run is reported, the next one comes
                        self.log(f"[schedule] {schedule.name} failed: {exc}")
            self._stop.wait(min(due.values()) - time.monotonic())

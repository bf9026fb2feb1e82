"""Functions started by an EventBridge schedule.

A schedule either sends EventBridge's own event (``detail-type: Scheduled
Event``) or, when the template gives the rule an ``Input``, that JSON: here
``{"job": "<name>"}``, so one function runs several jobs. The job runs as the
system principal (``Principal.system(job)``); its correlation id is the event's
id when EventBridge gave one, else Lambda's request id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from practice.core.identity import Principal
from practice.core.runtime import entry_point, logger

type Job = Callable[[Scheduled], Mapping[str, Any]]


@dataclass(frozen=True)
class Scheduled:
    """One run of a scheduled job: which, when, as whom."""

    job: str
    at: datetime
    principal: Principal
    event_id: str | None


class UnknownJob(ValueError):
    """The event names a job this function does not run (a template mistake)."""


def _job_name(event: Mapping[str, Any], jobs: Mapping[str, Job]) -> str:
    named = event.get("job") if isinstance(event, Mapping) else None
    if named is None and len(jobs) == 1:
        return next(iter(jobs))
    if named not in jobs:
        raise UnknownJob(f"no job {named!r} here; this function runs {', '.join(jobs)}")
    return named


def _event_id(event: Any) -> str | None:
    if isinstance(event, Mapping) and event.get("detail-type") == "Scheduled Event":
        return EventBridgeEvent(dict(event)).get_id
    return None


def on_schedule(
    jobs: Mapping[str, Job], *, budget_seconds: float
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of a function whose ``jobs`` schedules start: each run
    answers ``{"job", "result"}`` (Lambda records it; an exception fails the
    invocation, and an asynchronous one is retried, then sent to the DLQ)."""

    @entry_point(budget_seconds=budget_seconds, correlation_id=_event_id)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        name = _job_name(event, jobs)
        event_id = _event_id(event) or getattr(context, "aws_request_id", None)
        when = datetime.now(UTC)
        if isinstance(event, Mapping) and isinstance(event.get("time"), str):
            when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        run = Scheduled(name, when, Principal.system(name), event_id)
        result = dict(jobs[name](run))
        logger.info("scheduled job done", extra={"job": name, "result": result})
        return {"job": name, "result": result}

    return handler

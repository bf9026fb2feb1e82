"""One Lambda function behind both API Gateway and EventBridge schedules: an
HTTP API v2 event goes to the HTTP handler, anything else to the schedule's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def is_http_event(event: Any) -> bool:
    """True for an API Gateway HTTP API (payload 2.0) event."""
    return isinstance(event, dict) and "requestContext" in event and "routeKey" in event


def http_or_schedule(http: Handler, scheduled: Handler) -> Handler:
    """The handler of a function that serves routes and runs scheduled jobs."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return (http if is_http_event(event) else scheduled)(event, context)

    return handler

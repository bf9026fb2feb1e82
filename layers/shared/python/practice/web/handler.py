"""The Lambda handler of an HTTP function: Mangum inside the shared entry point."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import Scope
from starlette.types import ASGIApp

from practice.core.runtime import entry_point
from practice.web.problems import PROBLEM_JSON

_thread_state = threading.local()


def ensure_event_loop() -> None:
    """Give the calling thread an event loop if it has none.

    Mangum runs each request on the calling thread's event loop. Lambda calls
    from one thread; the local gateway and the concurrency tests call from
    many, and a thread other than the main one has no loop until given one.
    """
    if getattr(_thread_state, "loop", None) is None:
        _thread_state.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_thread_state.loop)


class HttpApiEvent(HTTPGateway):
    """An API Gateway HTTP API event as Mangum's own ``HTTPGateway`` reads it,
    with its ASGI scope built once: Mangum's is a property, built again when the
    answer is formed only to read the payload version (about 5% of a request)."""

    @classmethod
    def infer(cls, event: Any, _context: Any, _config: Any) -> bool:
        """Payload 2.0 only; anything else goes to Mangum's own handlers."""
        if not isinstance(event, dict):
            return False
        return event.get("version") == "2.0" and "requestContext" in event

    @functools.cached_property
    def scope(self) -> Scope:  # type: ignore[override]
        """The request's ASGI scope (built on first use)."""
        return super().scope


def gateway_request_id(event: Any) -> str | None:
    """API Gateway's id of the request (what Powertools' ``API_GATEWAY_HTTP``
    correlation path, ``requestContext.requestId``, finds)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    return context.get("requestId") if isinstance(context, dict) else None


def create_handler(
    app: ASGIApp, *, budget_seconds: float, base_path: str = ""
) -> Callable[[dict, Any], dict]:
    """The Lambda entry point of an ASGI app (payload format 2.0)."""
    ensure_event_loop()  # before Mangum, which otherwise asks for a loop that is not there
    asgi = Mangum(
        app,
        lifespan="off",
        api_gateway_base_path=base_path or "/",
        # Mangum base64-encodes content types it does not know as text.
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON],
        custom_handlers=[HttpApiEvent],
    )

    @entry_point(budget_seconds=budget_seconds, correlation_id=gateway_request_id)
    def handler(event: dict, context: Any) -> dict:
        ensure_event_loop()
        return asgi(event, context)

    return handler

"""The Lambda handler of an HTTP function: Mangum inside the shared entry point."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from fastapi import FastAPI
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from practice.runtime import entry_point
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


def create_handler(
    app: FastAPI, *, budget_seconds: float, base_path: str = ""
) -> Callable[[dict, Any], dict]:
    """The Lambda entry point of an ASGI app (payload format 2.0)."""
    ensure_event_loop()  # before Mangum, which otherwise asks for a loop that is not there
    asgi = Mangum(
        app,
        lifespan="off",
        api_gateway_base_path=base_path or "/",
        # Mangum base64-encodes content types it does not know as text.
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON],
    )

    @entry_point(
        budget_seconds=budget_seconds, correlation_id_path=correlation_paths.API_GATEWAY_HTTP
    )
    def handler(event: dict, context: Any) -> dict:
        ensure_event_loop()
        return asgi(event, context)

    return handler

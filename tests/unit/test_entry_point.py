"""The shared entry point of an HTTP function: every log line of an invocation
carries API Gateway's request id, and nothing of one invocation's tags leaks
into the next."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.responses import Response

from dev.invoke import LambdaContext
from practice.core.runtime import logger
from practice.web import Call, Reply, Router, create_api, create_handler
from tests.support import http_event

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def handler() -> Any:
    api = create_api(title="probe", max_body_bytes=1024, principal_of=lambda _request: None)
    router = Router()

    @router.get("/ping", public=True, replies=[Reply(204)])
    async def ping(_call: Call[None, None]) -> Response:
        logger.warning("pinged")
        return Response(status_code=204)

    api.include(router)
    return create_handler(api.app, budget_seconds=5)


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """What the Powertools logger writes (its handler holds the stdout it found)."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    yield stream
    logger.registered_handler.setStream(previous)


def _log_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]
    return [line for line in lines if line.get("message") == "pinged"]


def _event(request_id: str | None) -> dict[str, Any]:
    event = http_event("GET", "/ping")
    if request_id is None:
        del event["requestContext"]["requestId"]
    else:
        event["requestContext"]["requestId"] = request_id
    return event


def test_each_log_line_carries_its_requests_id(handler: Any, log: io.StringIO) -> None:
    for request_id in ("req-1", "req-2", None):
        assert handler(_event(request_id), LambdaContext())["statusCode"] == 204
    lines = _log_lines(log.getvalue())
    # The third request came without an id: it carries none, not the one before.
    assert [line.get("correlation_id") for line in lines] == ["req-1", "req-2", None]
    assert all(line["level"] == "WARNING" for line in lines)

"""The ASGI app factory shared by the HTTP functions: problem+json errors, body
limits, the caller's principal, and the Lambda handler around Mangum."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import psycopg
from aws_lambda_powertools.logging import correlation_paths
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from practice.auth import Principal, claims_from_event, identity_from_claims, resolve_principal
from practice.cache import TenantCache
from practice.config import Settings
from practice.db import Database
from practice.errors import PayloadTooLarge, ProblemError, UnprocessableContent
from practice.json_input import parse_json
from practice.observability import logger, metrics, tracer

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSONResponse carrying an RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # FastAPI prefixes locations with "body"/"query"/"path"; keep it, it tells
    # the client where to look, and join the rest as a dotted path.
    return ".".join(str(part) for part in loc)


async def _on_problem(request: Request, exc: ProblemError) -> JSONResponse:
    body = exc.to_problem(instance=request.url.path)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers, media_type=PROBLEM_JSON)


async def _on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field_name(err.get("loc", ())), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    names = ", ".join(e["field"] for e in errors) or "the request"
    return problem_response(422, "Unprocessable Content", f"invalid {names}", errors=errors)


async def _on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
    return problem_response(exc.status_code, title, str(exc.detail), headers=exc.headers)


async def _on_data_error(request: Request, exc: psycopg.errors.DataError) -> JSONResponse:
    # Class 22: a value the database refused (out of range, malformed). Input
    # checks should catch these first; this keeps any that slip through a 4xx.
    logger.warning("data error", extra={"path": request.url.path, "sqlstate": exc.sqlstate})
    return problem_response(422, "Unprocessable Content", "a value in the request is out of range")


async def _on_query_canceled(request: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
    logger.warning("statement timeout", extra={"path": request.url.path})
    return problem_response(
        503, "Service Unavailable", "the database took too long", headers={"Retry-After": "1"}
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
    return problem_response(500, "Internal Server Error", "an unexpected error occurred")


class BodyLimit:
    """Answers 413 when a request body exceeds ``max_bytes`` (pure ASGI, no buffering)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, counting body bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLarge(f"the body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "Payload Too Large", f"the body exceeds {self.max_bytes} bytes"
        )
        await response(scope, receive, send)


def create_app(*, title: str, max_body_bytes: int) -> FastAPI:
    """A FastAPI app with the shared error mapping and body limit."""
    app = FastAPI(title=title, version="1.0.0", docs_url="/docs", redoc_url=None)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(psycopg.errors.DataError, _on_data_error)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _on_query_canceled)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


# Building a validator costs far more than using one: one per model per container.
_adapter = lru_cache(maxsize=64)(TypeAdapter)


async def read_body[M](request: Request, model: type[M] | TypeAdapter[M]) -> M:
    """The JSON body validated against ``model``: 400 when it is not JSON, 422
    naming each wrong field when it does not fit."""
    document = parse_json(await request.body())
    adapter = model if isinstance(model, TypeAdapter) else _adapter(model)
    try:
        return adapter.validate_python(document)
    except ValidationError as exc:
        errors = [
            {"field": _field_name(("body", *err["loc"])), "message": err["msg"]}
            for err in exc.errors()
        ]
        names = ", ".join(e["field"] for e in errors)
        raise UnprocessableContent(f"invalid {names}", errors=errors) from exc


def lambda_event(request: Request) -> dict[str, Any]:
    """The raw API Gateway event Mangum received for this request."""
    return request.scope.get("aws.event") or {}


_thread_state = threading.local()


def _ensure_event_loop() -> None:
    # Mangum runs each request on the calling thread's event loop. Lambda calls
    # from one thread; the local gateway and the concurrency tests call from
    # many, and a thread other than the main one has no loop until given one.
    if getattr(_thread_state, "loop", None) is None:
        _thread_state.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_thread_state.loop)


def create_handler(app: FastAPI, *, base_path: str = "") -> Callable[[dict, Any], dict]:
    """The Lambda entry point: Mangum inside Powertools logging, tracing and metrics."""
    _ensure_event_loop()  # before Mangum, which otherwise asks for a loop that is not there
    # Mangum base64-encodes content types it does not know as text.
    asgi = Mangum(
        app,
        lifespan="off",
        api_gateway_base_path=base_path or "/",
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON],
    )

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
    )
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict, context: Any) -> dict:
        _ensure_event_loop()
        return asgi(event, context)

    return handler


def principal_dependency(
    db: Database, cache: TenantCache, settings: Settings
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that yields the caller's principal, read only from the
    authorizer's claims (never from the body or query)."""

    async def current_principal(request: Request) -> Principal:
        claims = claims_from_event(lambda_event(request))
        identity = identity_from_claims(claims, settings.authorized_parties)
        return resolve_principal(db, cache, identity, settings.cache_ttl_org)

    return current_principal

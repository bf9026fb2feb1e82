"""The ASGI app of an HTTP function: its declared routes (``practice.web.routes``),
the problem+json mapping, the body limit, and a contract (OpenAPI with the JWT
bearer scheme, Swagger UI served from the layer) that works offline.

A Starlette app: the routes are declared and read by ``practice.web.routes`` and
documented by ``practice.web.contract``, so nothing of FastAPI's per-request
machinery is left to run; its Swagger UI page helper is imported only when
someone opens ``/docs``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from practice.core.errors import DomainError, TooLarge, Unavailable
from practice.core.identity import Principal
from practice.core.runtime import count_unavailable, count_unhandled_error, logger
from practice.web.problems import domain_error_response, problem_response
from practice.web.routes import Api


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unavailable):
        count_unavailable()
    return domain_error_response(exc, instance=request.url.path)


async def _on_http(request: Request, exc: Exception) -> Response:
    # Starlette's own refusals: no route (404), a method the route lacks (405).
    assert isinstance(exc, HTTPException)
    return problem_response(
        exc.status_code, str(exc.detail), exc.headers, instance=request.url.path
    )


async def _on_data_error(request: Request, exc: Exception) -> Response:
    # Class 22: a value the database refused (out of range, malformed). Input
    # checks should catch these first; this keeps any that slip through a 4xx.
    logger.warning(
        "data error", extra={"path": request.url.path, "sqlstate": getattr(exc, "sqlstate", None)}
    )
    return problem_response(
        422, "a value in the request is out of range", instance=request.url.path
    )


async def _on_query_canceled(request: Request, _exc: Exception) -> Response:
    logger.warning("statement timeout", extra={"path": request.url.path})
    count_unavailable()
    return problem_response(
        503, "the database took too long", {"Retry-After": "1"}, instance=request.url.path
    )


async def _on_unexpected(request: Request, _exc: Exception) -> Response:
    logger.exception("unhandled error", extra={"path": request.url.path})
    count_unhandled_error()
    return problem_response(500, "an unexpected error occurred", instance=request.url.path)


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
            response = problem_response(
                413, f"the body exceeds {self.max_bytes} bytes", instance=scope.get("path", "")
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise TooLarge(f"the body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


_SWAGGER_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


def _swagger_dir() -> Path:
    # fastapi-offline ships Swagger UI 5 (which reads OpenAPI 3.1); only its
    # files are used, located without importing the package.
    spec = find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("fastapi-offline is not installed")
    return Path(spec.origin).parent / "static"


def _add_contract(app: Starlette, api: Api, title: str, prefix: str) -> None:
    document: dict[str, Any] = {}

    async def openapi(_request: Request) -> Response:
        if not document:
            from practice.web.contract import build_contract

            document.update(build_contract(api, title=title))
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html

        root = request.scope.get("root_path", "") + prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} — Swagger UI",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    async def docs_asset(request: Request) -> Response:
        asset = request.path_params["asset"]
        if asset not in _SWAGGER_ASSETS:
            return problem_response(
                404, f"no documentation asset {asset}", instance=request.url.path
            )
        return FileResponse(_swagger_dir() / asset, headers={"Cache-Control": "max-age=86400"})

    app.add_route(f"{prefix}/openapi.json", openapi, methods=["GET"])
    app.add_route(f"{prefix}/docs", docs, methods=["GET"])
    app.add_route(f"{prefix}/docs/{{asset}}", docs_asset, methods=["GET"])


def create_api(
    *,
    title: str,
    max_body_bytes: int,
    principal_of: Callable[[Request], Principal],
    idempotency: Any = None,
    docs_prefix: str = "",
) -> Api:
    """An HTTP function's routes, with the shared error mapping, body limit and
    contract. ``docs_prefix`` puts ``/openapi.json`` and ``/docs`` under a path
    of the function's own, for a function that shares the API with another one."""
    app = Starlette(
        middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)],
        exception_handlers={
            DomainError: _on_domain_error,
            HTTPException: _on_http,
            psycopg.errors.DataError: _on_data_error,
            psycopg.errors.QueryCanceled: _on_query_canceled,
            Exception: _on_unexpected,
        },
    )
    api = Api(app, principal_of, idempotency)
    _add_contract(app, api, title, docs_prefix)
    return api

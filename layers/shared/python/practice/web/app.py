"""The FastAPI app factory shared by the HTTP functions: the problem+json mapping,
the body limit, a JSON response for typed results, and a contract (OpenAPI with
the JWT bearer scheme, Swagger UI served from the layer) that works offline."""

from __future__ import annotations

import inspect
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from practice.errors import DomainError, TooLarge
from practice.runtime import count_unhandled_error, logger
from practice.web.body import invalid_from
from practice.web.problems import (
    Problem,
    domain_error_response,
    problem_response,
    resolve_schemas,
)

BEARER = "clerkJwt"


def json_response(
    result: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A typed result as JSON, encoded once by pydantic (no jsonable_encoder walk)."""
    return Response(result.model_dump_json(), status_code, headers, media_type="application/json")


async def _on_domain_error(request: Request, exc: DomainError) -> Response:
    return domain_error_response(exc, instance=request.url.path)


async def _on_validation(request: Request, exc: RequestValidationError) -> Response:
    return domain_error_response(invalid_from(list(exc.errors())), instance=request.url.path)


async def _on_http(_request: Request, exc: StarletteHTTPException) -> Response:
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _on_data_error(request: Request, exc: psycopg.errors.DataError) -> Response:
    # Class 22: a value the database refused (out of range, malformed). Input
    # checks should catch these first; this keeps any that slip through a 4xx.
    logger.warning("data error", extra={"path": request.url.path, "sqlstate": exc.sqlstate})
    return problem_response(422, "a value in the request is out of range")


async def _on_query_canceled(request: Request, exc: psycopg.errors.QueryCanceled) -> Response:
    logger.warning("statement timeout", extra={"path": request.url.path})
    return problem_response(503, "the database took too long", headers={"Retry-After": "1"})


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", extra={"path": request.url.path})
    count_unhandled_error()
    return problem_response(500, "an unexpected error occurred")


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
            response = problem_response(413, f"the body exceeds {self.max_bytes} bytes")
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


class RequestRoute(APIRoute):
    """An operation FastAPI declares and documents, served as a plain Starlette
    endpoint when it takes nothing but the ``Request``.

    Such a route reads its own parameters and body (``read_params``,
    ``read_body``), so FastAPI's per-request machinery (dependency solving, exit
    stacks, endpoint introspection) would run for nothing: about 0.03 ms of every
    request. Any other route is served as FastAPI serves it.
    """

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        wants = self.dependant
        takes_at_most_request = not (
            wants.path_params
            or wants.query_params
            or wants.header_params
            or wants.cookie_params
            or wants.body_params
            or wants.dependencies
        )
        if not takes_at_most_request or self.response_model is not None:
            return
        if wants.request_param_name is not None:
            self.app = request_response(endpoint)
        elif inspect.iscoroutinefunction(endpoint):
            self.app = request_response(_ignoring_request(endpoint))


def _ignoring_request(endpoint: Any) -> Any:
    async def call(_request: Request) -> Response:
        return await endpoint()

    return call


def _contract(app: FastAPI, public_paths: frozenset[str]) -> dict[str, Any]:
    # The published contract: FastAPI's schema, plus the Problem schema every
    # error response refers to and the bearer scheme of the JWT authorizer on
    # every route that API Gateway protects.
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas["Problem"].pop("$defs", {}))
        document["paths"] = resolve_schemas(document.get("paths", {}), schemas)
        components["securitySchemes"] = {
            BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        for path, operations in document.get("paths", {}).items():
            if path not in public_paths:
                for operation in operations.values():
                    operation["security"] = [{BEARER: []}]
        app.openapi_schema = document
    return app.openapi_schema


_SWAGGER_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


def _swagger_dir() -> Path:
    # fastapi-offline ships Swagger UI 5 (which reads OpenAPI 3.1); only its
    # files are used, located without importing the package.
    spec = find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("fastapi-offline is not installed")
    return Path(spec.origin).parent / "static"


def _add_docs(app: FastAPI, prefix: str = "") -> None:
    @app.get(f"{prefix}/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "") + prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    # The asset is read from the path by hand: a declared parameter would have
    # FastAPI import pydantic.v1 (to rule out v1 models), 20 ms of every cold start.
    @app.get(f"{prefix}/docs/{{asset}}", include_in_schema=False)
    async def docs_asset(request: Request) -> Response:
        asset = request.path_params["asset"]
        if asset not in _SWAGGER_ASSETS:
            return problem_response(404, f"no documentation asset {asset}")
        return FileResponse(_swagger_dir() / asset, headers={"Cache-Control": "max-age=86400"})


def create_app(
    *,
    title: str,
    max_body_bytes: int,
    public_paths: frozenset[str] = frozenset(),
    docs_prefix: str = "",
) -> FastAPI:
    """A FastAPI app with the shared error mapping, body limit and contract.

    ``public_paths`` are the routes API Gateway serves without the JWT
    authorizer; every other route is documented as needing the bearer token.
    ``docs_prefix`` puts ``/openapi.json`` and ``/docs`` under a path of the
    function's own, for a function that shares the API with another one.
    """
    # Tracing and metrics are Powertools' (X-Ray, CloudWatch EMF): FastAPI's own
    # OpenTelemetry stays off rather than looking for providers on every request.
    app = FastAPI(
        title=title,
        version="1.0.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{docs_prefix}/openapi.json",
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.router.route_class = RequestRoute
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(psycopg.errors.DataError, _on_data_error)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _on_query_canceled)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    contract = {"/openapi.json", "/docs", "/docs/{asset}"}
    public = public_paths | {f"{docs_prefix}{path}" for path in contract}
    app.openapi = lambda: _contract(app, public)  # type: ignore[method-assign]
    _add_docs(app, docs_prefix)
    return app

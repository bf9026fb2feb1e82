"""RFC 9457 problem documents: how each domain error becomes an HTTP answer, and
how the OpenAPI contract describes them."""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import reduce
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from practice.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    VersionRequired,
)
from practice.model import Model

PROBLEM_JSON = "application/problem+json"

# The one place where the domain's refusals meet HTTP.
STATUS_OF: dict[type[DomainError], int] = {
    Malformed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    Invalid: 422,
    VersionRequired: 428,
    Unavailable: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain error (its nearest mapped class)."""
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


class FieldError(Model):
    """One invalid part of the request."""

    field: str = Field(description="where: body.<path>, query.<name>, path.<name>, or a header")
    message: str


class Problem(Model):
    """An RFC 9457 problem document. Some carry more members, such as
    ``current_version`` on a version conflict."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A response carrying a problem document."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def domain_error_response(error: DomainError, instance: str) -> JSONResponse:
    """The problem response of a domain error."""
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else None
    return problem_response(
        status_of(error), error.detail, headers, instance=instance, **error.extra
    )


_WHEN = {
    400: "the body is not JSON, or a header is malformed",
    401: "no verified identity came with the request",
    403: "the caller's role or organization does not allow it",
    404: "unknown, or not visible to the caller",
    409: "the attempt changed (current_version tells where it stands) or has ended",
    413: "the body is larger than the limit",
    422: "a field is invalid; errors[] names each",
    428: "a conditional write came without its version",
    503: "the database is unavailable; retry after Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, as problem+json."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": _WHEN.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_JSON: {"schema": schema}},
            "headers": {"Retry-After": {"schema": {"type": "integer"}}} if status == 503 else {},
        }
        for status in statuses
    }


# What the contract documents (bodies, parameters) is named by a marker and built
# only when the contract is first asked for: a cold start should not build it.
LAZY_SCHEMA = "x-practice-schema"
_LAZY: dict[str, Callable[[], tuple[Any, dict[str, Any]]]] = {}


def lazy_contract(key: str, build: Callable[[], tuple[Any, dict[str, Any]]]) -> dict[str, str]:
    """A placeholder for what ``build()`` returns: the document's part and the
    component schemas it refers to."""
    _LAZY[key] = build
    return {LAZY_SCHEMA: key}


def schema_of(*models: type[BaseModel]) -> dict[str, str]:
    """A placeholder for the JSON schema of a body that is one of ``models``."""

    def build() -> tuple[dict[str, Any], dict[str, Any]]:
        schema = TypeAdapter(reduce(operator.or_, models)).json_schema(
            ref_template="#/components/schemas/{model}"
        )
        return schema, schema.pop("$defs", {})

    return lazy_contract("|".join(f"{m.__module__}.{m.__qualname__}" for m in models), build)


def resolve_schemas(node: Any, components: dict[str, Any]) -> Any:
    """``node`` with every placeholder replaced by what it stands for; the models
    it refers to are added to ``components``."""
    if isinstance(node, dict):
        if LAZY_SCHEMA in node:
            part, refers_to = _LAZY[node[LAZY_SCHEMA]]()
            components.update(refers_to)
            return part
        return {key: resolve_schemas(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_schemas(item, components) for item in node]
    return node


def request_body(*models: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that is one of ``models`` (routes
    read their bodies themselves, with ``read_body``)."""
    content = {"application/json": {"schema": schema_of(*models)}}
    return {"requestBody": {"required": True, "content": content}}


def json_body(*models: type[BaseModel], description: str = "OK") -> dict[str, Any]:
    """A ``responses`` entry documenting a JSON answer that is one of ``models``
    (routes return their own responses, so ``response_model`` would only document)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema_of(*models)}},
    }

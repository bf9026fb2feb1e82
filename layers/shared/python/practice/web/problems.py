"""RFC 9457 problem documents: how each domain error becomes an HTTP answer, and
the members a problem may carry, all declared."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import ConfigDict, Field
from starlette.responses import JSONResponse

from practice.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Malformed,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    VersionRequired,
)
from practice.core.model import Model

PROBLEM_JSON = "application/problem+json"

# The one place where the domain's refusals meet HTTP.
STATUS_OF: dict[type[DomainError], int] = {
    Malformed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
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

    field: str = Field(description="where: body.<path>, query.<name>, path.<name> or header.<Name>")
    message: str


class Problem(Model):
    """An RFC 9457 problem document. Besides the standard members, some carry
    where the resource stands or which fields the refusal is about."""

    # Every member is declared (a client's types must know them all), and the
    # optional ones are sent only when they apply.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=False)

    type: str = Field(description="always about:blank: the status says the kind")
    title: str = Field(description="the status's phrase")
    status: int
    detail: str = Field(description="what went wrong, for a person")
    instance: str = Field(description="the path of the request")
    errors: list[FieldError] | None = Field(
        default=None, description="each invalid part of the request (422, and refusals naming one)"
    )
    current_version: int | None = Field(
        default=None, description="the version the resource is at (409, 412)"
    )
    status_value: str | None = Field(default=None, description="the attempt's status (409)")
    fields: list[str] | None = Field(
        default=None, description="the fields an ended attempt can no longer change (409)"
    )
    limit: int | None = Field(default=None, description="the limit a request went over (422)")
    duplicates: list[str] | None = Field(
        default=None, description="ids named more than once in one write batch (422)"
    )


class GatewayMessage(Model):
    """What API Gateway answers by itself (its authorizer, its limits, a failed
    function): ``{"message": "Unauthorized"}`` and the like, as application/json."""

    model_config = ConfigDict(extra="forbid")

    message: str


def problem_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    instance: str,
    **extra: Any,
) -> JSONResponse:
    """A response carrying a problem document (members that do not apply left out)."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **{name: value for name, value in extra.items() if value is not None},
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def domain_error_response(error: DomainError, instance: str) -> JSONResponse:
    """The problem response of a domain error."""
    headers = None
    if isinstance(error, Unavailable):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, MethodNotAllowed):
        headers = {"Allow": ", ".join(error.allow)}
    return problem_response(
        status_of(error), error.detail, headers, instance=instance, **error.extra
    )

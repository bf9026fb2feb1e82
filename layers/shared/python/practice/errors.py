"""Domain errors that map one-to-one onto RFC 9457 problem responses."""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    """An error the API answers as ``application/problem+json`` with ``status``."""

    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document for this error."""
        problem: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem


class BadRequest(ProblemError):
    """The request is malformed (400)."""

    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    """No usable identity came with the request (401)."""

    status = 401
    title = "Unauthorized"


class Forbidden(ProblemError):
    """The caller is known but may not do this (403)."""

    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    """Unknown, or belonging to someone the caller may not see (404)."""

    status = 404
    title = "Not Found"


class Conflict(ProblemError):
    """The resource changed or is in a state that forbids the change (409)."""

    status = 409
    title = "Conflict"


class PreconditionRequired(ProblemError):
    """A conditional write came without its precondition, e.g. the version (428)."""

    status = 428
    title = "Precondition Required"


class PayloadTooLarge(ProblemError):
    """The body is larger than the configured limit (413)."""

    status = 413
    title = "Payload Too Large"


class UnprocessableContent(ProblemError):
    """Well-formed but semantically invalid input (422)."""

    status = 422
    title = "Unprocessable Content"


class ServiceUnavailable(ProblemError):
    """A dependency is down; the caller should retry after ``retry_after`` seconds (503)."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after

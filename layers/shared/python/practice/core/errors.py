"""Domain errors: what went wrong in the domain's words. Only ``practice.web``
knows which HTTP status each becomes."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on; ``extra`` travels to the client as is.

    ``field`` names the one part of the request at fault (``body.<path>``,
    ``query.<name>``, ``path.<name>``, ``header.<Name>``); it travels as the
    single entry of ``errors``, the one shape every refusal names its fields in.
    """

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if field is not None:
            extra["errors"] = [{"field": field, "message": detail}]
        self.extra = extra


class Malformed(DomainError):
    """The request cannot be read at all (not JSON, a header of the wrong form)."""


class Unauthenticated(DomainError):
    """No usable identity came with the request."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class MembershipChanged(Forbidden):
    """The caller lost the membership or the role a request assumed; a retry
    resolves them afresh."""


class NotFound(DomainError):
    """Unknown, or belonging to someone the caller may not see: the two are one."""


class Conflict(DomainError):
    """The resource is in a state that forbids the change (another version, ended)."""


class VersionRequired(DomainError):
    """A conditional write came without the version it is conditional on."""


class MethodNotAllowed(DomainError):
    """The path serves other methods (``allow`` names them)."""

    def __init__(self, detail: str, *, allow: list[str]) -> None:
        super().__init__(detail)
        self.allow = allow


class UnsupportedMediaType(DomainError):
    """The body is in a format the operation does not read."""


class TooLarge(DomainError):
    """The request is larger than the configured limit."""


class Invalid(DomainError):
    """Well-formed but semantically invalid input; ``field`` or ``errors`` name it."""


class Unavailable(DomainError):
    """A dependency is down; the caller may retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PreconditionFailed(DomainError):
    """A conditional write named a version that is no longer the current one
    (``current_version`` says which is)."""

"""``Idempotency-Key`` on the wire (IETF draft-ietf-httpapi-idempotency-key-header):
the header, the request's fingerprint, and replies replayed as responses.

Only successful replies are stored: a refusal (4xx) rolls its transaction back
with the key, so a retry is judged again rather than told the old refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Request, Response
from psycopg import Connection
from pydantic import Field

from practice.errors import Invalid
from practice.idempotency import (
    MAX_KEY_LENGTH,
    Idempotency,
    IdempotencyKey,
    KeyInFlight,
    StoredReply,
    request_hash,
)
from practice.identity import Principal
from practice.web.params import In
from practice.web.problems import problem_response, problem_responses

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"

# A field of a route's parameters (``RouteParams``): documents the header in the
# contract and bounds it (visible ASCII and spaces, as a header value and a text
# column both accept).
KeyHeader = Annotated[
    str | None,
    In("header", HEADER),
    Field(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[ -~]+$",
        description="Makes a retried write safe: the same key and request within 24 h "
        "replay the first response (with Idempotent-Replayed: true); the same key with "
        "another request is 422; while the first is running, 409 with Retry-After.",
    ),
]

# The replayed header on success answers, and the in-flight 409, for `responses=`.
REPLAY_HEADER = {
    REPLAYED: {
        "description": "true when the response replays the first one sent for this key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def in_flight_responses() -> dict[int | str, dict[str, Any]]:
    """The 409 of a key still in flight, documented with its Retry-After."""
    documented = problem_responses(409)
    documented[409]["description"] = (
        "the attempt changed or has ended; or a request with this Idempotency-Key "
        "is still running (Retry-After says when to retry)"
    )
    documented[409]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return documented


def refuse_key(value: str | None, why: str) -> None:
    """Refuse an Idempotency-Key where the action does not apply one (never ignore it)."""
    if value is not None:
        raise Invalid(f"this action takes no {HEADER}: {why}", field=f"header.{HEADER}")


async def idempotency_key(request: Request, value: str | None) -> IdempotencyKey | None:
    """The request's key with its fingerprint (method, path, query, body)."""
    if value is None:
        return None
    query = "&".join(sorted(request.url.query.split("&"))) if request.url.query else ""
    fingerprint = request_hash(request.method, request.url.path, query, await request.body())
    return IdempotencyKey(value, fingerprint)


def _stored(response: Response) -> StoredReply:
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return StoredReply(response.status_code, bytes(response.body).decode(), headers)


async def respond_once(
    idempotency: Idempotency,
    request: Request,
    principal: Principal,
    key: str | None,
    respond: Callable[[Connection | None], Response],
) -> Response:
    """``respond`` once per key: its response, or the first one's replayed."""
    try:
        answer = idempotency.once(principal, await idempotency_key(request, key), respond, _stored)
    except KeyInFlight as exc:
        # A conflict the client resolves by waiting: hence Retry-After.
        headers = {"Retry-After": str(exc.retry_after)}
        return problem_response(409, exc.detail, headers, instance=request.url.path)
    if isinstance(answer, StoredReply):
        headers = answer.headers | {REPLAYED: "true"}
        return Response(answer.body, answer.status_code, headers)
    return answer

"""``Idempotency-Key`` on the wire (IETF draft-ietf-httpapi-idempotency-key-header):
the header, the fingerprint of the request as its route read it, and replies
replayed as responses.

Only successful replies are stored: a refusal (4xx) rolls its transaction back
with the key, so a retry is judged again rather than told the old refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import Connection
from starlette.requests import Request
from starlette.responses import Response

from practice.core.dedupe import (
    MAX_KEY_LENGTH,
    Dedupe,
    DedupeKey,
    Handled,
    KeyReused,
    KeyRunning,
    member_scope,
    request_hash,
)
from practice.core.errors import Invalid
from practice.core.identity import Principal
from practice.web.problems import problem_response

if TYPE_CHECKING:
    from practice.web.routes import Call

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_FIELD = f"header.{HEADER}"
# Visible ASCII and spaces, as a header value and a text column both accept.
KEY_PATTERN = r"^[ -~]+$"
_KEY = re.compile(KEY_PATTERN)
KEY_DESCRIPTION = (
    "Makes a retried write safe: the same key and request within 24 h replay the first"
    " answer (with Idempotent-Replayed: true); the same key with another request is 422;"
    " while the first is running, 409 with Retry-After."
)


def idempotency_key(request: Request, takes_key: bool) -> str | None:
    """The request's Idempotency-Key where the route takes one; refused (422) where
    it does not, rather than ignored, and when it is not a usable key."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not takes_key:
        raise Invalid(f"this operation takes no {HEADER}: it is safe to repeat", field=_FIELD)
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not _KEY.match(value):
        raise Invalid(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters", field=_FIELD
        )
    return value


def fingerprint(call: Call[Any, Any]) -> str:
    """What the request asks, as its route read it: the operation, its parameters
    and body after validation, in a canonical form. The same request spelled
    differently (key order, letter case of an id, the seed form of the URL)
    replays; two that act differently never share one."""
    params = call.params.model_dump(mode="json") if call.params is not None else None
    body = call.body.model_dump(mode="json", exclude_unset=True) if call.body is not None else None
    canonical = json.dumps({"params": params, "body": body}, sort_keys=True, separators=(",", ":"))
    return request_hash(call.operation.method, call.operation.path, canonical)


@dataclass
class Idempotent:
    """A keyed request's key, bound to the container's dedupe records."""

    store: Dedupe
    principal: Principal
    key: str

    def once(
        self, call: Call[Any, Any], respond: Callable[[Connection | None], Response]
    ) -> Response:
        """``respond`` once per key: its response, or the first one's replayed."""
        key = DedupeKey(member_scope(self.principal), self.key, fingerprint(call))
        try:
            answer = self.store.once(self.principal, key, respond, _reply)
        except KeyRunning as exc:
            # A conflict the client resolves by waiting: hence Retry-After.
            headers = {"Retry-After": str(exc.retry_after)}
            return problem_response(409, exc.detail, headers, instance=call.request.url.path)
        except KeyReused as exc:
            raise Invalid(exc.detail, field=_FIELD) from exc
        if isinstance(answer, Handled):
            reply = answer.reply
            headers = reply["headers"] | {REPLAYED: "true"}
            return Response(reply["body"], reply["status_code"], headers)
        return answer


def _reply(response: Response) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return {
        "status_code": response.status_code,
        "headers": headers,
        "body": bytes(response.body).decode(),
    }

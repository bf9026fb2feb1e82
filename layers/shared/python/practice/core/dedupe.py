"""Idempotent retries backed by PostgreSQL: the ``Idempotency-Key`` record of a
write commits in the write's own transaction (sql/migrations/0012_idempotency.sql).

A keyed write runs as one transaction holding, in order: the claim
(``idempotency_claim``), the write, and the insert of the key with the reply.
The claim raises when the key is in flight, was used for another request, or
already has a reply; in pipeline mode that error aborts the rest unexecuted.
So either the write and its key both commit or neither does, and a retry after
a failure does the work.

Round trips: the claim and the write travel together; the reply is known only
after the write's rows are read (a flush, which keeps the transaction open),
so the key and the commit are a second round trip. Without a key, a write is
what it was: one round trip.

This module knows replies only as data (status, headers, body); ``practice.web``
turns them into HTTP responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.types.json import Jsonb

from practice.core.db import Database
from practice.core.errors import Conflict, Invalid
from practice.core.identity import Principal

CLAIM = "select idempotency_claim(%(key)s, %(request_hash)s)"

STORE = """
insert into idempotency_keys
    (org_id, user_id, key, request_hash, status_code, headers, body, expires_at)
values (%(org_id)s, %(user_id)s, %(key)s, %(request_hash)s, %(status_code)s, %(headers)s,
        %(body)s, now() + make_interval(secs => %(ttl_seconds)s))
"""

STORED = """
select status_code, headers, body from idempotency_keys
 where org_id = %(org_id)s and user_id = %(user_id)s and key = %(key)s
   and request_hash = %(request_hash)s and expires_at > now()
"""

# The claim's answers (SQLSTATEs raised by idempotency_claim).
IN_FLIGHT, OTHER_REQUEST, HAS_REPLY = "PR409", "PR422", "PR200"
# How soon a client may retry a key that is still in flight: a write finishes
# within the request budget, and most within a second.
IN_FLIGHT_RETRY_AFTER = 1
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyKey:
    """The client's key and the fingerprint of the request it came with."""

    value: str
    request_hash: str


def request_hash(*parts: bytes | str) -> str:
    """A fingerprint of a request from its parts (method, path, query, body)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))  # no two part lists hash alike
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredReply:
    """A reply as stored with its key: what a retry gets back."""

    status_code: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class KeyInFlight(Conflict):
    """A request with this key has not finished; retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass
class Idempotency:
    """Runs keyed writes once per (org, user, key) within the key's lifetime."""

    db: Database
    ttl_seconds: int

    def once[R](
        self,
        principal: Principal,
        key: IdempotencyKey | None,
        write: Callable[[Connection | None], R],
        encode: Callable[[R], StoredReply],
    ) -> R | StoredReply:
        """``write`` once: its outcome, or the ``StoredReply`` of the first request
        with this key and the same fingerprint. Without a key, just ``write(None)``
        in its own transaction. ``write`` runs its statements on the connection it
        is given; ``encode`` says what a retry should get back."""
        if key is None:
            return write(None)
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "key": key.value,
            "request_hash": key.request_hash,
        }

        def work(conn: Connection) -> R:
            conn.execute(CLAIM, params)
            outcome = write(conn)
            reply = encode(outcome)  # a refusal raised here rolls back write and key alike
            conn.execute(
                STORE,
                params
                | {
                    "status_code": reply.status_code,
                    "headers": Jsonb(reply.headers),
                    "body": reply.body,
                    "ttl_seconds": self.ttl_seconds,
                },
            )
            return outcome

        # Twice at most: a key that expires between its claim and the read of its
        # reply is as good as absent, and the second claim runs the write.
        for _ in range(2):
            try:
                return self.db.run(principal, work, idempotent=False)
            except psycopg.Error as exc:
                _refuse(exc)
            rows = self.db.query(principal, STORED, params)
            if rows:
                row: dict[str, Any] = rows[0]
                return StoredReply(row["status_code"], row["body"], dict(row["headers"]))
        raise KeyInFlight(
            "the Idempotency-Key expired while it was replayed", retry_after=IN_FLIGHT_RETRY_AFTER
        )


def _refuse(exc: psycopg.Error) -> None:
    # Returns only for HAS_REPLY: the caller then reads the stored reply.
    if exc.sqlstate == IN_FLIGHT:
        raise KeyInFlight(
            "a request with this Idempotency-Key is still in flight",
            retry_after=IN_FLIGHT_RETRY_AFTER,
        ) from exc
    if exc.sqlstate == OTHER_REQUEST:
        raise Invalid(
            "this Idempotency-Key was used for a different request; use a new key",
            field="header.Idempotency-Key",
        ) from exc
    if exc.sqlstate != HAS_REPLY:
        raise exc

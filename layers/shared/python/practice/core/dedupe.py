"""Work done once per key, backed by PostgreSQL (``dedupe_records``): the record
commits in the work's own transaction, whoever the caller is. A member's
``Idempotency-Key``, a webhook's delivery id and a queue message's id are all
keys of a scope (sql/migrations/0019_dedupe_and_system.sql).

Keyed work runs as one transaction holding, in order: the claim
(``dedupe_claim``), the work, and the insert of the record with its reply. The
claim raises when the key is still running, was used for another request, or
has been handled; in pipeline mode that error aborts the rest unexecuted. So
either the work and its record both commit or neither does, and a retry after
a failure does the work.

Round trips: the claim and the work travel together; the reply is known only
after the work's rows are read (a flush, which keeps the transaction open),
so the record and the commit are a second round trip. Unkeyed work is what it
was: one round trip.

A reply is data (JSON) to this module; ``practice.web`` makes HTTP of it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.types.json import Jsonb

from practice.core.budget import seconds_left
from practice.core.db import Database
from practice.core.errors import Conflict, Invalid
from practice.core.identity import Principal, Role

CLAIM = "select dedupe_claim(%(scope)s, %(key)s, %(request_hash)s)"

STORE = """
insert into dedupe_records (scope, key, org_id, user_id, request_hash, reply, expires_at)
values (%(scope)s, %(key)s, %(org_id)s, %(user_id)s, %(request_hash)s, %(reply)s,
        now() + make_interval(secs => %(ttl_seconds)s))
"""

STORED = """
select reply from dedupe_records
 where scope = %(scope)s and key = %(key)s and request_hash = %(request_hash)s
   and expires_at > now()
"""

# The sweep of expired records, a batch at a time (the system principal's
# policy lets it delete anyone's expired record, nothing else).
SWEEP = """
delete from dedupe_records
 where ctid = any (array(select ctid from dedupe_records
                          where expires_at <= now() limit %(batch)s))
"""

# What dedupe_claim raises, named for what happened.
RUNNING, OTHER_REQUEST, HANDLED = "PDBSY", "PDDIF", "PDONE"
# How soon a client may retry a key that is still running: work finishes within
# the request budget, and most within a second.
RUNNING_RETRY_AFTER = 1
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class DedupeKey:
    """A key of a scope, and the fingerprint of the request it came with."""

    scope: str
    value: str
    request_hash: str


def request_hash(*parts: bytes | str) -> str:
    """A fingerprint of a request from its parts."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))  # no two part lists hash alike
        digest.update(data)
    return digest.hexdigest()


def member_scope(principal: Principal) -> str:
    """The scope of a member's Idempotency-Keys: theirs in their org."""
    return f"http:{principal.org_id}:{principal.user_id}"


class KeyReused(Invalid):
    """This key was used for another request (the caller names where the key travels)."""


class KeyRunning(Conflict):
    """Work with this key has not finished; retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Handled:
    """Work this key already did: what it answered (None when nothing was kept)."""

    reply: Any


@dataclass
class Dedupe:
    """Runs keyed work once per (scope, key) within the record's lifetime."""

    db: Database
    ttl_seconds: int

    def once[R](
        self,
        principal: Principal,
        key: DedupeKey | None,
        work: Callable[[Connection | None], R],
        reply_of: Callable[[R], Any] = lambda _outcome: None,
    ) -> R | Handled:
        """``work`` once: its outcome, or ``Handled`` with the reply kept by the
        first request with this key and fingerprint. Without a key, just
        ``work(None)`` in its own transaction. ``work`` runs its statements on the
        connection it is given; ``reply_of`` says what a retry gets back."""
        if key is None:
            return work(None)
        member = principal.role is not Role.SYSTEM
        params = {
            "scope": key.scope,
            "key": key.value,
            "request_hash": key.request_hash,
            "org_id": principal.org_id if member else None,
            "user_id": principal.user_id if member else None,
        }

        def keyed(conn: Connection) -> R:
            conn.execute(CLAIM, params)
            outcome = work(conn)
            reply = reply_of(outcome)  # a refusal raised here rolls back work and record
            conn.execute(
                STORE,
                params | {"reply": Jsonb(reply), "ttl_seconds": self.ttl_seconds},
            )
            return outcome

        # Twice at most: a record that expires between its claim and the read of
        # its reply is as good as absent, and the second claim runs the work.
        for _ in range(2):
            try:
                return self.db.run(principal, keyed, idempotent=False)
            except psycopg.Error as exc:
                _refuse(exc)
            rows = self.db.query(principal, STORED, params)
            if rows:
                return Handled(rows[0]["reply"])
        raise KeyRunning("the key expired while it was replayed", retry_after=RUNNING_RETRY_AFTER)

    def sweep(self, principal: Principal, batch: int = 5000) -> int:
        """Delete every expired record of any scope (the system's job), a batch per
        transaction so no lock is held long, while the run's budget lasts."""
        deleted = 0
        while seconds_left(math.inf) > 1:
            cursor = self.db.run(principal, lambda conn: conn.execute(SWEEP, {"batch": batch}))
            deleted += cursor.rowcount
            if cursor.rowcount < batch:
                break
        return deleted


def _refuse(exc: psycopg.Error) -> None:
    # Returns only for HANDLED: the caller then reads the stored reply.
    if exc.sqlstate == RUNNING:
        raise KeyRunning(
            "a request with this key is still running", retry_after=RUNNING_RETRY_AFTER
        ) from exc
    if exc.sqlstate == OTHER_REQUEST:
        raise KeyReused("this key was used for a different request; use a new key") from exc
    if exc.sqlstate != HANDLED:
        raise exc

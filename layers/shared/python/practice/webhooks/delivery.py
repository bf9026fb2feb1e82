"""The delivery log (``webhook_events``): store first, then process once.

``store`` writes a verified delivery in its own transaction; its unique
(source, event_id) is the dedupe record, so a repeat finds the first row and
changes nothing. ``process`` claims the row (row lock), does the work and
records the outcome in one transaction: a concurrent claimant waits, then finds
it done. A failure is recorded in a transaction of its own: the row keeps
``failed``, the error, the attempt count, and when the retry schedule may try
again (exponential backoff, up to a limit; after it, the row waits for an
operator's replay and the backlog alarm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal
from practice.webhooks.clerk import Applied
from practice.webhooks.models import Incoming

STORE = """
insert into webhook_events (source, event_id, event_type, subject, occurred_ms, payload,
                            next_attempt_at)
values (%(source)s, %(event_id)s, %(event_type)s, %(subject)s, %(occurred_ms)s, %(payload)s,
        now() + make_interval(secs => %(stuck)s))
on conflict (source, event_id) do nothing
returning id
"""

FIRST = "select id, outcome from webhook_events where source = %s and event_id = %s"

CLAIM = """
select id, source, event_type, payload, outcome, attempts
  from webhook_events where id = %s for update
"""

DONE = """
update webhook_events
   set outcome = %(outcome)s, reason = %(reason)s, org_id = coalesce(%(org_id)s, org_id),
       processed_at = now(), error = null, attempts = attempts + 1, next_attempt_at = null
 where id = %(id)s
"""

FAILED = """
update webhook_events
   set outcome = 'failed', error = left(%(error)s, 2000), attempts = attempts + 1,
       next_attempt_at = case when attempts + 1 >= %(limit)s then null
                              else now() + make_interval(secs => least(%(cap)s,
                                       %(base)s * power(2, attempts)::int)) end
 where id = %(id)s and outcome in ('received', 'failed')
"""

DUE = """
select id from webhook_events
 where outcome in ('received', 'failed') and next_attempt_at <= now()
 order by next_attempt_at
 limit %s
   for update skip locked
"""

EXHAUSTED = """
select count(*) as n from webhook_events where outcome = 'failed' and next_attempt_at is null
"""

type Work = Callable[[Connection, dict[str, Any]], Applied]


class Deliveries:
    """Stores and processes deliveries as the system principal."""

    def __init__(self, db: Database, settings: Settings, job: str = "webhooks") -> None:
        self.db = db
        self.settings = settings
        self.principal = Principal.system(job)

    def store(self, incoming: Incoming) -> tuple[int, str | None]:
        """The row's id, and None when this call stored it, else the stored
        row's outcome (a repeat)."""
        # Field by field: model_dump would copy the whole payload first.
        params = {
            "source": incoming.source,
            "event_id": incoming.event_id,
            "event_type": incoming.event_type,
            "subject": incoming.subject,
            "occurred_ms": incoming.occurred_ms,
            "payload": Jsonb(incoming.payload),
            "stuck": self.settings.webhook_stuck_seconds,
        }
        rows = self.db.query(self.principal, STORE, params, idempotent=False)
        if rows:
            return rows[0]["id"], None
        first = self.db.query(self.principal, FIRST, [incoming.source, incoming.event_id])
        return first[0]["id"], first[0]["outcome"]

    def process(self, event_id: int, work: Work) -> Applied:
        """Claim, work and record the outcome at once; a failure is recorded and raised."""
        try:
            with self.db.transaction(self.principal) as conn:
                row = conn.execute(CLAIM, [event_id]).fetchone()
                if row is None:
                    return Applied("ignored", "no such event")
                if row["outcome"] in ("processed", "ignored"):
                    return Applied(row["outcome"], "already done")
                applied = work(conn, row)
                conn.execute(
                    DONE,
                    {
                        "id": event_id,
                        "outcome": applied.outcome,
                        "reason": applied.reason,
                        "org_id": applied.org_id,
                    },
                )
                return applied
        except Exception as exc:
            self.record_failure(event_id, exc)
            raise

    def record_failure(self, event_id: int, exc: BaseException) -> None:
        """Keep the failure on the row, with when to try again."""
        self.db.query(
            self.principal,
            FAILED,
            {
                "id": event_id,
                "error": f"{type(exc).__name__}: {exc}",
                "limit": self.settings.webhook_retry_max_attempts,
                "base": self.settings.webhook_retry_base_seconds,
                "cap": self.settings.webhook_retry_max_backoff_seconds,
            },
            idempotent=False,
        )

    def due(self, principal: Principal) -> list[int]:
        """Failed and stuck deliveries whose time to retry has come."""
        rows = self.db.query(principal, DUE, [self.settings.webhook_retry_batch])
        return [row["id"] for row in rows]

    def exhausted(self, principal: Principal) -> int:
        """Deliveries that failed every retry and wait for a replay."""
        return self.db.query(principal, EXHAUSTED)[0]["n"]

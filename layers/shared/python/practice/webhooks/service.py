"""Receiving and processing webhook deliveries (no HTTP here: headers and the
raw body in, an acknowledgement out).

A delivery is verified over its raw bytes first (nothing is stored for one
that fails: it is logged and counted as ``WebhookRejected``), then stored, then
processed. A repeat of a stored delivery is acknowledged at once and changes
nothing. A processing failure is kept on the row and acknowledged as
``received`` (202): the retry schedule processes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from psycopg import Connection

from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import DomainError, Invalid, Malformed, NotFound, Unauthenticated
from practice.core.identity import Principal, Role
from practice.core.runtime import logger, metrics
from practice.web.body import parse_json
from practice.webhooks import clerk, vapi
from practice.webhooks.clerk import Applied
from practice.webhooks.delivery import Deliveries
from practice.webhooks.models import Acknowledged, Incoming, StoredEvent, StoredEvents
from practice.webhooks.secrets import WebhookSecrets
from practice.webhooks.signatures import verify_svix, verify_vapi_hmac, verify_vapi_secret

LIST = """
select id, source, event_type, subject, received_at, processed_at, outcome, reason, error, attempts
  from webhook_events
 where org_id = %(org_id)s
   and (%(before)s::bigint is null or id < %(before)s::bigint)
 order by id desc
 limit %(limit)s
"""

OF_ORG = "select id from webhook_events where id = %s and org_id = %s"


def _rejected(source: str, exc: DomainError) -> None:
    logger.warning("webhook rejected", extra={"source": source, "reason": str(exc)})
    metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)


class WebhookService:
    """The two providers' deliveries, and their log for admins and the retry job."""

    def __init__(self, db: Database, settings: Settings, secrets: WebhookSecrets) -> None:
        self.db = db
        self.settings = settings
        self.secrets = secrets
        self.deliveries = Deliveries(db, settings)

    # -- receiving ---------------------------------------------------------------

    def receive_clerk(self, headers: Mapping[str, str], body: bytes) -> tuple[int, Acknowledged]:
        """A Svix-signed Clerk delivery: verified, stored, processed."""
        keys = self.secrets.current().clerk_keys
        if not keys:
            # Nothing can verify: every delivery is refused as unsigned (and counted).
            _rejected("clerk", Unauthenticated("no Clerk signing secret is configured"))
            raise Unauthenticated("no Clerk signing secret is configured")
        try:
            msg_id = verify_svix(
                headers,
                body,
                keys,
                now=self.secrets.now(),
                tolerance=self.settings.webhook_tolerance_seconds,
            )
        except (Malformed, Unauthenticated) as exc:
            _rejected("clerk", exc)
            raise
        payload = _object(body)
        kind = payload.get("type")
        if not isinstance(kind, str) or not kind:
            raise Malformed("the event has no type", field="body.type")
        incoming = Incoming(
            source="clerk",
            event_id=msg_id,
            event_type=kind,
            subject=clerk.subject_of(payload),
            occurred_ms=clerk.event_time(payload),
            payload=payload,
        )
        return self._store_and_process(incoming)

    def receive_vapi(self, headers: Mapping[str, str], body: bytes) -> tuple[int, Acknowledged]:
        """A Vapi server message: authenticated, and stored and processed when it is
        one that changes an attempt; others are acknowledged with an empty result."""
        secret = self.secrets.current().vapi
        if not secret:
            _rejected("vapi", Unauthenticated("no Vapi secret is configured"))
            raise Unauthenticated("no Vapi secret is configured")
        try:
            if self.settings.webhook_vapi_auth == "hmac":
                verify_vapi_hmac(
                    headers,
                    body,
                    secret,
                    now=self.secrets.now(),
                    tolerance=self.settings.webhook_tolerance_seconds,
                )
            else:
                verify_vapi_secret(headers, secret)
        except (Malformed, Unauthenticated) as exc:
            _rejected("vapi", exc)
            raise
        payload = _object(body)
        message = vapi.message_of(payload)
        if message["type"] not in vapi.STORED:
            return 200, Acknowledged(outcome="ignored", reason="informational message")
        key, call_id = vapi.delivery_key(message)
        stamp = message.get("timestamp")
        incoming = Incoming(
            source="vapi",
            event_id=key,
            event_type=message["type"],
            subject=call_id,
            occurred_ms=clerk.epoch_ms(stamp),
            payload=payload,
        )
        return self._store_and_process(incoming)

    def _store_and_process(self, incoming: Incoming) -> tuple[int, Acknowledged]:
        event_id, stored = self.deliveries.store(incoming)
        if stored is not None:
            return 200, Acknowledged(outcome="repeat", event_id=event_id)
        try:
            applied = self.process(event_id)
        except Exception:
            logger.exception("webhook processing failed", extra={"event_id": event_id})
            metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=1)
            return 202, Acknowledged(outcome="received", event_id=event_id)
        outcome = "ignored" if applied.outcome == "ignored" else "processed"
        return 200, Acknowledged(outcome=outcome, event_id=event_id, reason=applied.reason)

    # -- processing --------------------------------------------------------------

    def process(self, event_id: int) -> Applied:
        """Process a stored delivery once (the handler, the retry job, a replay)."""
        return self.deliveries.process(event_id, self._work)

    def _work(self, conn: Connection, row: dict[str, Any]) -> Applied:
        if row["source"] == "clerk":
            return clerk.apply(
                conn,
                row["payload"],
                self.settings.webhook_clerk_roles,
                self.settings.webhook_clerk_default_role,
            )
        return vapi.apply(conn, row["payload"], self.deliveries.principal.user_id)

    def retry_due(self, principal: Principal) -> dict[str, int]:
        """The retry job: process each failed or stuck delivery whose time has come."""
        done = failed = 0
        for event_id in self.deliveries.due(principal):
            try:
                self.process(event_id)
                done += 1
            except Exception:
                logger.exception("webhook retry failed", extra={"event_id": event_id})
                failed += 1
        if failed:
            metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=failed)
        exhausted = self.deliveries.exhausted(principal)
        # Every run reports the backlog, zero included: its alarm watches the maximum.
        metrics.add_metric(name="WebhookExhausted", unit=MetricUnit.Count, value=exhausted)
        return {"processed": done, "failed": failed, "exhausted": exhausted}

    # -- the log, for admins -------------------------------------------------------

    def recent(self, principal: Principal, limit: int, cursor: str | None) -> StoredEvents:
        """The org's recent deliveries, newest first (keyset by id)."""
        principal.require(Role.ADMIN)
        before = _cursor(cursor)
        rows = self.db.query(
            principal, LIST, {"org_id": principal.org_id, "before": before, "limit": limit + 1}
        )
        items = [StoredEvent.model_validate(row) for row in rows[:limit]]
        more = len(rows) > limit
        return StoredEvents(items=items, next_cursor=str(items[-1].id) if more and items else None)

    def replay(self, principal: Principal, event_id: int) -> Acknowledged:
        """Process one of the org's deliveries again if it is not done (an admin's replay)."""
        principal.require(Role.ADMIN)
        if not self.db.query(principal, OF_ORG, [event_id, principal.org_id]):
            raise NotFound("no such delivery")
        try:
            applied = self.process(event_id)
        except Exception:
            logger.exception("webhook replay failed", extra={"event_id": event_id})
            return Acknowledged(outcome="received", event_id=event_id, reason="processing failed")
        outcome = "ignored" if applied.outcome == "ignored" else "processed"
        return Acknowledged(outcome=outcome, event_id=event_id, reason=applied.reason)


def _object(body: bytes) -> dict[str, Any]:
    try:
        document = parse_json(body)
    except Invalid as exc:
        raise Malformed(str(exc), field="body") from exc
    if not isinstance(document, dict):
        raise Malformed("the body is not a JSON object", field="body")
    return document


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise Invalid("the cursor is not one this list gave", field="query.cursor")
    return int(cursor)

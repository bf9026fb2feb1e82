"""Clerk events: organizations, memberships and users, applied newest-first by
Clerk's own times (``clerk_apply_*`` in sql/migrations/0024_webhooks.sql).

| event | effect |
| --- | --- |
| organization.created, .updated | the org's name and slug, unless a newer state is stored |
| organization.deleted | the org is deactivated (deleted_at): its members get 403; data stays |
| organizationMembership.created, .updated | the member and its role (mapped by a setting) |
| organizationMembership.deleted | the membership is deactivated (a newer rejoin revives it) |
| user.created, .updated | name and email on each of the user's memberships |
| user.deleted | name and email erased for good; attempts and facts stay under the user id |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from practice.core.errors import Malformed

ORGANIZATION = "select clerk_apply_organization(%s, %s, %s, %s, %s) as done"
MEMBERSHIP = "select clerk_apply_membership(%s, %s, %s, %s, %s, %s, %s, %s) as done"
USER = "select clerk_apply_user(%s, %s, %s, %s, %s) as done"
ORG_ID = "select id from orgs where clerk_org_id = %s"

HANDLED = {
    f"{kind}.{change}"
    for kind in ("organization", "organizationMembership", "user")
    for change in ("created", "updated", "deleted")
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def epoch_ms(value: Any) -> int | None:
    # Epoch milliseconds; anything else (a string, a bool, out of range) is no time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 <= value < MAX_MS else None


MAX_MS = 2**62


def event_time(payload: dict[str, Any]) -> int:
    """The time of the state an event carries: the object's updated_at; for a
    delete, when it happened (the envelope's timestamp), at or after the state
    it removes."""
    data = _object(payload.get("data"))
    updated = epoch_ms(data.get("updated_at"))
    happened = epoch_ms(payload.get("timestamp"))
    if str(payload.get("type", "")).endswith(".deleted"):
        return max(t for t in (updated, happened, 0) if t is not None)
    return updated if updated is not None else (happened or 0)


def subject_of(payload: dict[str, Any]) -> str | None:
    """The Clerk id an event is about."""
    data = payload.get("data")
    return _text(data.get("id")) if isinstance(data, dict) else None


def _name(first: Any, last: Any) -> str | None:
    name = " ".join(part for part in (_text(first), _text(last)) if part)
    return name or None


def _primary_email(data: dict[str, Any]) -> str | None:
    emails = [e for e in data.get("email_addresses") or [] if isinstance(e, dict)]
    primary = data.get("primary_email_address_id")
    for email in emails:
        if email.get("id") == primary:
            return _text(email.get("email_address"))
    return _text(emails[0].get("email_address")) if emails else None


@dataclass(frozen=True)
class Applied:
    """What an event did: its outcome and, when ignored, why."""

    outcome: str
    reason: str | None
    org_id: Any = None


def apply(
    conn: Connection, payload: dict[str, Any], roles: Mapping[str, str], default_role: str
) -> Applied:
    """Apply one Clerk event in the caller's transaction (the system principal)."""
    kind = payload.get("type")
    data = payload.get("data")
    if kind not in HANDLED:
        return Applied("ignored", f"event type {kind} is not used")
    if not isinstance(data, dict):
        raise Malformed("the event has no data object", field="body.data")
    deleted = kind.endswith(".deleted")
    at = event_time(payload)
    org: str | None = None
    if kind.startswith("organization."):
        org = _text(data.get("id"))
        if org is None:
            raise Malformed("the organization has no id", field="body.data.id")
        done = conn.execute(
            ORGANIZATION, [org, _text(data.get("name")), _text(data.get("slug")), at, deleted]
        ).fetchone()["done"]
    elif kind.startswith("organizationMembership."):
        org_data = data.get("organization") if isinstance(data.get("organization"), dict) else {}
        user = (
            data.get("public_user_data") if isinstance(data.get("public_user_data"), dict) else {}
        )
        org, user_id = _text(org_data.get("id")), _text(user.get("user_id"))
        if org is None or user_id is None:
            raise Malformed(
                "the membership names no organization.id or public_user_data.user_id",
                field="body.data",
            )
        role = roles.get(str(data.get("role")), default_role)
        done = conn.execute(
            MEMBERSHIP,
            [
                org,
                _text(org_data.get("name")),
                user_id,
                role,
                _name(user.get("first_name"), user.get("last_name")),
                _text(user.get("identifier")),
                at,
                deleted,
            ],
        ).fetchone()["done"]
    else:
        user_id = _text(data.get("id"))
        if user_id is None:
            raise Malformed("the user has no id", field="body.data.id")
        done = conn.execute(
            USER,
            [
                user_id,
                _name(data.get("first_name"), data.get("last_name")),
                _primary_email(data),
                at,
                deleted,
            ],
        ).fetchone()["done"]
    # The delivery belongs to the org it is about (its admins see it in the log).
    found = conn.execute(ORG_ID, [org]).fetchone() if org else None
    org_id = found["id"] if found else None
    if done == "stale":
        return Applied("ignored", "a newer state is stored", org_id)
    if done == "deleted" and not deleted:
        return Applied("ignored", "the record was deleted", org_id)
    if done == "missing":
        return Applied("ignored", "the user has no membership yet")
    return Applied("processed", None, org_id)

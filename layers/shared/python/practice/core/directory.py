"""The caller as the database knows them: the Clerk org mapped to ours, the
stored role, and the membership behind ``GET /me``."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from cachetools import TTLCache

from practice.core.db import Database
from practice.core.errors import Forbidden, NotFound
from practice.core.identity import Identity, Principal, Role
from practice.core.model import Model

# The one narrow lookup that runs before any tenant context exists: the
# SECURITY DEFINER function maps the Clerk org to ours and provisions the
# member just in time when Clerk's membership webhook has not arrived yet.
_RESOLVE = "select org_id, member_role from resolve_principal(%s, %s, %s)"

_MEMBER = """
select o.id as org_id, o.clerk_org_id, o.name as org_name,
       m.user_id, m.role as member_role, m.display_name, m.email, m.manager_user_id
from org_members m
join orgs o on o.id = m.org_id
where m.org_id = %s and m.user_id = %s
"""


class Principals:
    """Callers' principals, by Clerk org, user and the role their token claims,
    each kept ``ttl`` seconds in a cache of their own (not a tenant's: the org
    is what the lookup finds)."""

    def __init__(self, db: Database, ttl: float, maxsize: int = 10_000) -> None:
        self.db = db
        self.cache: TTLCache[tuple[str, str, Role], Principal] = TTLCache(maxsize, ttl)
        self._lock = threading.Lock()
        db.on_membership_changed(self.forget)

    def resolve(self, identity: Identity) -> Principal:
        """The caller's principal: the Clerk org mapped to the internal org (cached).

        resolve_principal answers the lesser of the token's role and the stored
        one: Clerk's token is signed but lives a minute. Cached for ``ttl``, but
        every request's transaction checks it again (practice_enter), so a
        demotion or removal recorded later takes effect on the caller's next
        request (and drops what was cached, through ``forget``).
        """
        key = (identity.clerk_org_id, identity.user_id, identity.role)
        with self._lock:
            cached = self.cache.get(key)
        if cached is not None:
            return cached
        rows = self.db.query(None, _RESOLVE, [*key[:2], identity.role.value])
        if not rows:
            raise Forbidden(f"the organization {identity.clerk_org_id} is not provisioned")
        principal = Principal(
            identity.user_id, rows[0]["org_id"], Role(rows[0]["member_role"]), identity.clerk_org_id
        )
        with self._lock:
            self.cache[key] = principal
        return principal

    def forget(self, principal: Principal) -> None:
        """Drop a caller's cached principals, whatever role their token claimed (their
        membership changed)."""
        with self._lock:
            for role in (Role.ADMIN, Role.MANAGER, Role.TRAINEE):
                self.cache.pop((principal.clerk_org_id, principal.user_id, role), None)


class OrgRef(Model):
    """An organization as its members see it."""

    id: UUID
    clerk_org_id: str
    name: str


class Membership(Model):
    """The caller's membership row."""

    role: str
    display_name: str | None
    email: str | None
    manager_user_id: str | None


class Member(Model):
    """``GET /me``: the caller's principal beside their org and membership."""

    user_id: str
    role: Role
    org: OrgRef
    membership: Membership


def describe_member(db: Database, principal: Principal) -> Member:
    """The caller's principal beside their org and membership as the database knows them."""
    rows: list[dict[str, Any]] = db.query(principal, _MEMBER, [principal.org_id, principal.user_id])
    if not rows:
        raise NotFound("the caller has no membership in this organization")
    row = rows[0]
    return Member(
        user_id=principal.user_id,
        role=principal.role,
        org=OrgRef(id=row["org_id"], clerk_org_id=row["clerk_org_id"], name=row["org_name"]),
        membership=Membership(
            role=row["member_role"],
            display_name=row["display_name"],
            email=row["email"],
            manager_user_id=row["manager_user_id"],
        ),
    )

"""The caller as the database knows them: the Clerk org mapped to ours, the
stored role, and the membership behind ``GET /me``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from practice.core.cache import MISSING, TenantCache
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

# Principals are cached before the org is known, under a reserved org id that
# no tenant can have (orgs get random v4 UUIDs; this is the nil UUID).
_DIRECTORY_ORG = UUID(int=0)


def resolve_principal(
    db: Database, cache: TenantCache, identity: Identity, ttl: float
) -> Principal:
    """The caller's principal: the Clerk org mapped to the internal org (cached)."""
    key = _principal_key(identity.clerk_org_id, identity.user_id, identity.role)
    cached = cache.get(_DIRECTORY_ORG, key)
    if cached is not MISSING:
        return cached
    rows = db.query(None, _RESOLVE, [identity.clerk_org_id, identity.user_id, identity.role.value])
    if not rows:
        raise Forbidden(f"the organization {identity.clerk_org_id} is not provisioned")
    # resolve_principal answers the lesser of the token's role and the stored
    # one: Clerk's token is signed but lives a minute. Cached for a minute, but
    # every request's transaction checks it again (practice_enter), so a
    # demotion or removal recorded later takes effect on the caller's next request.
    role = Role(rows[0]["member_role"])
    principal = Principal(identity.user_id, rows[0]["org_id"], role, identity.clerk_org_id)
    cache.set(_DIRECTORY_ORG, key, principal, ttl)
    return principal


def _principal_key(clerk_org_id: str, user_id: str, token_role: Role) -> tuple:
    return ("principal", clerk_org_id, user_id, token_role.value)


def forget_principal(cache: TenantCache, principal: Principal) -> None:
    """Drop a caller's cached principals, whatever role their token claimed (their
    membership changed)."""
    for role in (Role.ADMIN, Role.MANAGER, Role.TRAINEE):
        cache.invalidate(
            _DIRECTORY_ORG, _principal_key(principal.clerk_org_id, principal.user_id, role)
        )


def forget_principals(cache: TenantCache) -> int:
    """Drop every cached principal, so the next request of each caller resolves
    again (tests; an operator after a bulk membership change)."""
    return cache.clear_org(_DIRECTORY_ORG)


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

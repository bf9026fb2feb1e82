"""Who is calling: identity from the JWT authorizer's claims, and role checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from practice.cache import MISSING
from practice.errors import Forbidden, Unauthorized


class Role(StrEnum):
    """Roles of an org member, plus ``system`` for webhooks and schedules."""

    ADMIN = "admin"
    MANAGER = "manager"
    TRAINEE = "trainee"
    SYSTEM = "system"


# Clerk's built-in roles are org:admin and org:member; deployments add
# org:manager and org:trainee. Anything unknown gets the least privilege.
_CLERK_ROLES = {"admin": Role.ADMIN, "manager": Role.MANAGER}
_RANK = {Role.TRAINEE: 0, Role.MANAGER: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Identity:
    """What the token says: the Clerk user, the Clerk org and the role in it."""

    user_id: str
    clerk_org_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the database knows it: user, internal org id and role."""

    user_id: str
    org_id: UUID
    role: Role
    clerk_org_id: str = ""

    @property
    def can_coach(self) -> bool:
        """True for roles that may score attempts and watch a team (managers, admins)."""
        return self.role in (Role.ADMIN, Role.MANAGER)

    def require(self, *roles: Role) -> None:
        """Raise 403 unless the caller has one of ``roles``."""
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this action needs the role {allowed}; the caller is {self.role}")


def claims_from_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The JWT claims API Gateway's authorizer put into an HTTP API v2 event."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) and claims else None


def role_from_clerk(raw: str | None) -> Role:
    """Map a Clerk role (``org:admin`` in v1, ``admin`` in v2) to ours."""
    name = (raw or "").removeprefix("org:").strip().lower()
    return _CLERK_ROLES.get(name, Role.TRAINEE)


def _org_claim(value: Any) -> dict[str, Any] | None:
    # API Gateway renders every claim as a string; the nested `o` object may
    # arrive as a dict (direct invoke) or as JSON text. Anything else fails closed.
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def identity_from_claims(
    claims: dict[str, Any] | None, authorized_parties: list[str] | tuple[str, ...] = ()
) -> Identity:
    """Parse Clerk v2 (``o.id``/``o.rol``) or v1 (``org_id``/``org_role``) claims.

    No claims or no subject: 401. A token without an organization: 403.
    """
    if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthorized("the request carries no verified identity")
    if authorized_parties and claims.get("azp") not in authorized_parties:
        raise Unauthorized("the token was issued for another party (azp)")
    org = _org_claim(claims.get("o"))
    if org is not None and org.get("id"):
        return Identity(claims["sub"], str(org["id"]), role_from_clerk(org.get("rol")))
    if claims.get("org_id"):
        return Identity(
            claims["sub"], str(claims["org_id"]), role_from_clerk(claims.get("org_role"))
        )
    raise Forbidden("the token names no active organization; select one and retry")


# The one narrow lookup that runs before any tenant context exists: the
# SECURITY DEFINER function maps the Clerk org to ours and provisions the
# member just in time when Clerk's membership webhook has not arrived yet.
_RESOLVE = "select org_id, member_role from resolve_principal(%s, %s, %s)"


def resolve_principal(db: Any, cache: Any, identity: Identity, ttl: float) -> Principal:
    """The caller's principal: the Clerk org mapped to the internal org (cached)."""
    key = ("principal", identity.clerk_org_id, identity.user_id, identity.role.value)
    cached = cache.get(_DIRECTORY_ORG, key)
    if cached is not MISSING:
        return cached
    rows = db.query(None, _RESOLVE, [identity.clerk_org_id, identity.user_id, identity.role.value])
    if not rows:
        raise Forbidden(f"the organization {identity.clerk_org_id} is not provisioned")
    # The lesser of the token's role and the stored one: Clerk's token is signed
    # but lives a minute; a demotion recorded here (by an admin, or by Clerk's
    # webhook) takes effect at once.
    role = min(identity.role, Role(rows[0]["member_role"]), key=_RANK.__getitem__)
    principal = Principal(identity.user_id, rows[0]["org_id"], role, identity.clerk_org_id)
    cache.set(_DIRECTORY_ORG, key, principal, ttl)
    return principal


# Principals are cached before the org is known, under a reserved org id that
# no tenant can have (orgs get random v4 UUIDs; this is the nil UUID).
_DIRECTORY_ORG = UUID(int=0)

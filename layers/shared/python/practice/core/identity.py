"""Who is calling: roles, the principal, and Clerk's claims as API Gateway passes
them. No I/O: the database's view of the caller is ``practice.core.directory``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from practice.core.errors import Forbidden, Unauthenticated


class Role(StrEnum):
    """Roles of an org member, plus ``system`` for webhooks and schedules."""

    ADMIN = "admin"
    MANAGER = "manager"
    TRAINEE = "trainee"
    SYSTEM = "system"


# Clerk's built-in roles are org:admin and org:member; deployments add
# org:manager and org:trainee. Anything unknown gets the least privilege. Which
# role outranks which is the database's to say (the member_role enum).
_CLERK_ROLES = {"admin": Role.ADMIN, "manager": Role.MANAGER}


@dataclass(frozen=True, slots=True)
class Identity:
    """What the token says: the Clerk user, the Clerk org and the role in it."""

    user_id: str
    clerk_org_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the database knows it: user, internal org id and role; or
    the system (``Principal.system``), for work no member asked for."""

    user_id: str
    org_id: UUID | None
    role: Role
    clerk_org_id: str = ""

    @classmethod
    def system(cls, job: str, org_id: UUID | None = None) -> Principal:
        """The system doing ``job`` (a schedule, a webhook, a queue consumer), for
        one org when the work is that org's. Its rights are the policies' for the
        role ``system``: no membership, and no tenant row without an org."""
        return cls(f"system:{job}", org_id, Role.SYSTEM)

    def require(self, *roles: Role) -> None:
        """Raise ``Forbidden`` unless the caller has one of ``roles``."""
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this action needs the role {allowed}; the caller is {self.role}")


def claims_from_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The JWT claims API Gateway's authorizer put into an HTTP API v2 event."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) and claims else None


# Clerk's ids (user_…, org_…) are short ASCII; anything else is not a token Clerk
# issued, and must not reach the database (an index row has a size limit).
_CLERK_ID = re.compile(r"[A-Za-z0-9_\-.:|@]{1,128}", re.ASCII)


def _clerk_id(value: Any, claim: str) -> str:
    if not isinstance(value, str) or _CLERK_ID.fullmatch(value) is None:
        raise Unauthenticated(f"the token's {claim} claim is not an id Clerk issues")
    return value


def role_from_clerk(raw: Any) -> Role:
    """Map a Clerk role (``org:admin`` in v1, ``admin`` in v2) to ours."""
    if raw is not None and not isinstance(raw, str):
        raise Unauthenticated("the token's organization role is not a string")
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

    No claims or no subject: ``Unauthenticated``. No organization: ``Forbidden``.
    """
    if not claims or not claims.get("sub"):
        raise Unauthenticated("the request carries no verified identity")
    user_id = _clerk_id(claims["sub"], "sub")
    if authorized_parties and claims.get("azp") not in authorized_parties:
        raise Unauthenticated("the token was issued for another party (azp)")
    org = _org_claim(claims.get("o"))
    if org is not None and org.get("id"):
        return Identity(user_id, _clerk_id(org["id"], "o.id"), role_from_clerk(org.get("rol")))
    if claims.get("org_id"):
        org_id = _clerk_id(claims["org_id"], "org_id")
        return Identity(user_id, org_id, role_from_clerk(claims.get("org_role")))
    raise Forbidden("the token names no active organization; select one and retry")

"""Liveness of the function and its database, and who the caller is to the database."""

from __future__ import annotations

from typing import Any

from practice.auth import Principal
from practice.db import Database
from practice.errors import NotFound, ServiceUnavailable

_MEMBER = """
select o.id as org_id, o.clerk_org_id, o.name as org_name,
       m.user_id, m.role as member_role, m.display_name, m.email, m.manager_user_id
from org_members m
join orgs o on o.id = m.org_id
where m.org_id = %s and m.user_id = %s
"""


def health_report(db: Database) -> tuple[int, dict[str, Any]]:
    """Database reachability plus pool and breaker state; 503 when unreachable."""
    try:
        db.query(None, "select 1")
        database = "ok"
    except ServiceUnavailable as exc:
        database = f"unavailable: {exc.detail}"
    status = 200 if database == "ok" else 503
    return status, {
        "status": "ok" if status == 200 else "degraded",
        "database": database,
        **db.stats(),
    }


def describe_member(db: Database, principal: Principal) -> dict[str, Any]:
    """The caller's principal beside their org and membership as the database knows them."""
    rows = db.query(principal, _MEMBER, [principal.org_id, principal.user_id])
    if not rows:
        raise NotFound("the caller has no membership in this organization")
    member = rows[0]
    return {
        "user_id": principal.user_id,
        "role": principal.role.value,
        "org": {
            "id": str(member["org_id"]),
            "clerk_org_id": member["clerk_org_id"],
            "name": member["org_name"],
        },
        "membership": {
            "role": member["member_role"],
            "display_name": member["display_name"],
            "email": member["email"],
            "manager_user_id": member["manager_user_id"],
        },
    }

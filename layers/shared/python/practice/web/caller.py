"""The caller's principal, read only from the JWT authorizer's claims (never from
the body or query)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from practice.cache import TenantCache
from practice.config import Settings
from practice.db import Database
from practice.directory import forget_principal, resolve_principal
from practice.identity import Principal, claims_from_event, identity_from_claims


def lambda_event(request: Request) -> dict[str, Any]:
    """The raw API Gateway event Mangum received for this request."""
    return request.scope.get("aws.event") or {}


class Callers:
    """Who calls: a route asks ``callers(request)`` first thing, once per request.

    A plain call rather than a FastAPI dependency: the dependency tree solves
    and validates on every request (about 0.03 ms), for a value that needs none
    of it. When the database finds that a caller's membership changed, their
    cached principal is forgotten.
    """

    def __init__(self, db: Database, cache: TenantCache, settings: Settings) -> None:
        self.db, self.cache, self.settings = db, cache, settings
        db.on_membership_changed(lambda principal: forget_principal(cache, principal))

    def __call__(self, request: Request) -> Principal:
        """The principal of the request's verified claims (401/403 when there is none)."""
        claims = claims_from_event(lambda_event(request))
        identity = identity_from_claims(claims, self.settings.authorized_parties)
        return resolve_principal(self.db, self.cache, identity, self.settings.cache_ttl_org)

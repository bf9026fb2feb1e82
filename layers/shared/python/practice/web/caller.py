"""The caller's principal as a FastAPI dependency, read only from the JWT
authorizer's claims (never from the body or query)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request

from practice.cache import TenantCache
from practice.config import Settings
from practice.db import Database
from practice.directory import forget_principal, resolve_principal
from practice.errors import MembershipChanged
from practice.identity import Principal, claims_from_event, identity_from_claims


def lambda_event(request: Request) -> dict[str, Any]:
    """The raw API Gateway event Mangum received for this request."""
    return request.scope.get("aws.event") or {}


def principal_dependency(
    db: Database, cache: TenantCache, settings: Settings
) -> Callable[[Request], AsyncIterator[Principal]]:
    """A dependency that yields the caller's principal, and forgets it when the
    database says the caller's membership changed during the request."""

    async def current_principal(request: Request) -> AsyncIterator[Principal]:
        claims = claims_from_event(lambda_event(request))
        identity = identity_from_claims(claims, settings.authorized_parties)
        try:
            yield resolve_principal(db, cache, identity, settings.cache_ttl_org)
        except MembershipChanged:
            forget_principal(cache, identity)
            raise

    return current_principal

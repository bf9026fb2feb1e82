"""The caller's principal, read only from the JWT authorizer's claims (never from
the body or query)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from practice.core.config import Settings
from practice.core.directory import Principals
from practice.core.identity import Principal, claims_from_event, identity_from_claims


def lambda_event(request: Request) -> dict[str, Any]:
    """The raw API Gateway event Mangum received for this request."""
    return request.scope.get("aws.event") or {}


class PrincipalOf:
    """``principal_of(request)``: the caller's principal, once per request, before
    anything else is read (401 without a verified identity, 403 without a
    membership)."""

    def __init__(self, principals: Principals, settings: Settings) -> None:
        self.principals, self.settings = principals, settings

    def __call__(self, request: Request) -> Principal:
        """The principal of the request's verified claims."""
        claims = claims_from_event(lambda_event(request))
        return self.principals.resolve(
            identity_from_claims(claims, self.settings.authorized_parties)
        )

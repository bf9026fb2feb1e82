"""Claims parsing: Clerk v1 and v2, string-rendered claims, missing org or claims."""

import json

import pytest

from practice.core.errors import Forbidden, Unauthenticated
from practice.core.identity import (
    Identity,
    Role,
    claims_from_event,
    identity_from_claims,
    role_from_clerk,
)


def test_v2_claims_with_org_object() -> None:
    claims = {"sub": "user_1", "v": 2, "o": {"id": "org_a", "rol": "admin", "slg": "acme"}}
    assert identity_from_claims(claims) == Identity("user_1", "org_a", Role.ADMIN)


def test_v2_claims_with_org_rendered_as_json_text() -> None:
    # API Gateway renders every claim as a string, nested objects included.
    claims = {"sub": "user_1", "v": "2", "o": json.dumps({"id": "org_a", "rol": "manager"})}
    assert identity_from_claims(claims) == Identity("user_1", "org_a", Role.MANAGER)


def test_v1_claims_with_prefixed_role() -> None:
    claims = {"sub": "user_1", "org_id": "org_b", "org_role": "org:admin", "org_slug": "b"}
    assert identity_from_claims(claims) == Identity("user_1", "org_b", Role.ADMIN)


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("org:admin", Role.ADMIN),
        ("admin", Role.ADMIN),
        ("org:manager", Role.MANAGER),
        ("org:member", Role.TRAINEE),
        ("trainee", Role.TRAINEE),
        ("org:billing_owner", Role.TRAINEE),
        (None, Role.TRAINEE),
    ],
)
def test_unknown_roles_get_least_privilege(raw: str | None, role: Role) -> None:
    assert role_from_clerk(raw) is role


@pytest.mark.parametrize(
    "o_claim",
    ["map[id:org_a rol:admin]", "[org_a admin]", "{not json", json.dumps(["org_a"]), ""],
)
def test_unparseable_org_claim_fails_closed(o_claim: str) -> None:
    with pytest.raises(Forbidden):
        identity_from_claims({"sub": "user_1", "o": o_claim})


def test_token_without_org_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="no active organization"):
        identity_from_claims({"sub": "user_1", "v": "2"})


@pytest.mark.parametrize("claims", [None, {}, {"o": {"id": "org_a"}}, {"sub": ""}])
def test_missing_claims_or_subject_is_unauthorized(claims: dict | None) -> None:
    with pytest.raises(Unauthenticated):
        identity_from_claims(claims)


def test_authorized_party_is_checked_when_configured() -> None:
    claims = {"sub": "user_1", "azp": "https://evil.example", "org_id": "org_a"}
    with pytest.raises(Unauthenticated, match="azp"):
        identity_from_claims(claims, ["https://app.example"])
    claims["azp"] = "https://app.example"
    assert identity_from_claims(claims, ["https://app.example"]).clerk_org_id == "org_a"


def test_claims_are_read_from_the_authorizer_context_only() -> None:
    event = {
        "requestContext": {"authorizer": {"jwt": {"claims": {"sub": "user_1"}, "scopes": None}}},
        "body": '{"sub": "user_evil"}',
        "queryStringParameters": {"sub": "user_evil"},
    }
    assert claims_from_event(event) == {"sub": "user_1"}
    assert claims_from_event({"requestContext": {}}) is None
    assert claims_from_event({}) is None

"""`GET /health` and `GET /me` through API Gateway v2 events into the handler."""

from __future__ import annotations

from tests.support import World, http_event


def test_health_needs_no_token_and_shows_no_internals(call) -> None:
    reply = call(http_event("GET", "/health"))
    assert reply.status == 200
    assert reply.body == {"status": "ok"}


def test_me_returns_the_principal_as_the_database_knows_it(call, world: World) -> None:
    manager = world.users["manager_a"]
    reply = call(http_event("GET", "/me", user=manager))
    assert reply.status == 200
    # Every value as build_world stored it: the org's name too, which the
    # claims do not carry, so it can only have come from the database.
    assert reply.body == {
        "user_id": manager.user_id,
        "role": "manager",
        "org": {
            "id": str(world.orgs["a"]),
            "clerk_org_id": manager.clerk_org_id,
            "name": world.org_names["a"],
        },
        "membership": {
            "role": "manager",
            "display_name": "Manager A",
            "email": "manager_a@a.example",
            "manager_user_id": None,
        },
    }


def test_me_accepts_v1_claims(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    reply = call(http_event("GET", "/me", claims=trainee.claims(v1=True)))
    assert reply.status == 200
    assert reply.body["role"] == "trainee"
    assert reply.body["membership"]["manager_user_id"] == world.users["manager_a"].user_id


def test_no_claims_is_401_problem(call) -> None:
    reply = call(http_event("GET", "/me"))
    assert reply.status == 401
    assert reply.problem["title"] == "Unauthorized"


def test_token_without_org_is_403_problem(call, world: World) -> None:
    claims = {"sub": world.users["trainee_a1"].user_id, "v": "2"}
    reply = call(http_event("GET", "/me", claims=claims))
    assert reply.status == 403
    assert "organization" in reply.problem["detail"]


def test_unknown_org_is_403_not_provisioned(call) -> None:
    claims = {"sub": "user_nobody", "org_id": "org_does_not_exist", "org_role": "org:admin"}
    reply = call(http_event("GET", "/me", claims=claims))
    assert reply.status == 403
    assert "not provisioned" in reply.problem["detail"]


def test_a_base64_body_is_decoded_like_a_plain_one(call, world: World) -> None:
    # API Gateway (and the SAM CLI's sample event) may base64-encode JSON bodies.
    body = {"scenario_id": str(world.scenarios["a"])}
    event = http_event(
        "POST", "/attempts", user=world.users["trainee_a1"], body=body, base64_body=True
    )
    assert event["isBase64Encoded"] is True
    reply = call(event)
    assert reply.status == 201
    assert reply.body["scenario_id"] == body["scenario_id"]

"""Hostile and unusual input on the attempt endpoint: always a 4xx problem, never
a 500, never a half-written row; and the tenancy edges of roles and the cache."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, start
from tests.support import User, World, http_event

NUL_BODIES = [
    ('{"scenario_id": "%s", "metadata": {"note": "a\\u0000b"}}', 422, "body.metadata.note"),
    ('{"scenario_id": "%s", "metadata": {"k\\u0000": 1}}', 422, "body.metadata"),
    ('{"scenario_id": "%s", "vapi_call_id": "call\\u0000x"}', 422, "body.vapi_call_id"),
    ('{"scenario_id": "%s", "metadata": {"s": "\\ud800"}}', 422, "body.metadata.s"),
    ('{"scenario_id": "%s", "metadata": {"n": NaN}}', 400, None),
    ('{"scenario_id": "%s", "metadata": {"n": 1e400}}', 400, None),
    ('{"scenario_id": "%s", "metadata": ' + "[" * 40 + "]" * 40 + "}", 422, "body.metadata"),
    ('{"scenario_id": "%s", "metadata": ' + "[" * 20000 + "]" * 20000 + "}", 400, None),
]


def _count_attempts(database: MigratedDatabase, user: User) -> int:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select count(*) from scenario_attempts where clerk_user_id = %s", [user.user_id]
        ).fetchone()[0]


@pytest.mark.parametrize(("template", "status", "field"), NUL_BODIES)
def test_values_the_database_cannot_store_are_refused_up_front(
    call, world: World, database: MigratedDatabase, template: str, status: int, field: str | None
) -> None:
    trainee = world.users["trainee_a2"]
    before = _count_attempts(database, trainee)
    body = template.replace("%s", str(world.scenarios["a"]))
    reply = call(http_event("POST", "/attempts", user=trainee, body=body))
    assert reply.status == status, reply.body
    if field:
        assert reply.problem["errors"][0]["field"].startswith(field)
    assert _count_attempts(database, trainee) == before


def test_a_nul_in_an_autosave_is_refused_and_the_draft_kept(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    body = '{"answers": {"q": "x\\u0000"}, "expected_version": 1}'
    assert call(attempt_event("PATCH", attempt["id"], trainee, "save", body)).status == 422
    assert call(attempt_event("GET", attempt["id"], trainee, "state")).body["version"] == 1


def test_a_call_id_is_unique_within_an_org_and_says_nothing_across_orgs(call, world: World) -> None:
    call_id = f"call_{uuid.uuid4().hex}"
    start(call, world.users["trainee_a1"], world.scenarios["a"], vapi_call_id=call_id)
    # Another org's trainee neither learns that the call id exists nor is kept
    # from using it: uniqueness is the org's, as the attempts are.
    body = {"scenario_id": str(world.scenarios["b"]), "vapi_call_id": call_id}
    reply = call(http_event("POST", "/attempts", user=world.users["trainee_b1"], body=body))
    assert reply.status == 201, reply.body
    # Within the org, a call belongs to one attempt.
    body = {"scenario_id": str(world.scenarios["a"]), "vapi_call_id": call_id}
    reply = call(http_event("POST", "/attempts", user=world.users["trainee_a2"], body=body))
    assert reply.status == 409
    assert reply.problem["errors"][0]["field"] == "body.vapi_call_id"


@pytest.mark.parametrize(
    "if_match",
    [
        '"' + "9" * 5000 + '"',
        "garbage",
        '"-1"',
        '"1.5"',
        "4294967297",
        '"2147483648"',
        "*",
        '"1", "2"',
    ],
)
def test_an_if_match_that_names_no_version_is_422_naming_the_header(
    call, world: World, if_match: str
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    event = attempt_event(
        "PATCH", attempt["id"], trainee, "save", {"answers": {}}, headers={"If-Match": if_match}
    )
    reply = call(event)
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "header.If-Match"


def test_a_weak_if_match_never_matches(call, world: World) -> None:
    # RFC 9110: If-Match compares strongly, so W/"1" fails even at version 1;
    # it names no version to build on, and is refused as such.
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    body = {"answers": {"q": 1}}
    headers = {"If-Match": 'W/"1"'}
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", body, headers=headers))
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "header.If-Match"
    headers = {"If-Match": '"1"'}
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", body, headers=headers))
    assert (reply.status, reply.body["version"]) == (200, 2)


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [("*", 304), ('"7", "1"', 304), ('W/"1"', 304), ('"2"', 200), ("9" * 5000, 200)],
)
def test_if_none_match_takes_star_lists_and_weak_tags(
    call, world: World, if_none_match: str, status: int
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    headers = {"If-None-Match": if_none_match}
    assert call(attempt_event("GET", attempt["id"], trainee, "state", headers=headers)).status == (
        status
    )


@pytest.mark.parametrize("score", ["1e-100000", "NaN", "Infinity", 100.0001, -1, "12.34567"])
def test_out_of_range_scores_are_422(call, world: World, score: Any) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    reply = call(
        attempt_event("POST", attempt["id"], world.users["manager_a"], "submit", {"score": score})
    )
    assert reply.status == 422, reply.body
    assert reply.problem["errors"][0]["field"] == "body.score"


@pytest.mark.parametrize("occurred_at", ["2026-01-01T00:00:00", "not a time"])
def test_activity_times_must_be_zoned(call, world: World, occurred_at: str) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    events = [{"event_type": "idle", "occurred_at": occurred_at}]
    reply = call(attempt_event("POST", attempt["id"], trainee, "activity", events))
    assert reply.status == 422
    assert "occurred_at" in reply.problem["errors"][0]["field"]


def test_a_token_role_above_the_stored_role_gets_the_stored_role(call, world: World) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    stored_trainee = world.users["trainee_a3"]
    claims = stored_trainee.claims() | {
        "o": json.dumps({"id": stored_trainee.clerk_org_id, "rol": "admin"})
    }
    reply = call(attempt_event("GET", attempt["id"], None, "state", claims=claims))
    assert reply.status == 404
    me = call(http_event("GET", "/me", claims=claims))
    assert me.body["role"] == "trainee"


def test_the_cache_does_not_serve_one_role_what_another_role_of_the_same_user_saw(
    call, world: World
) -> None:
    # Info, not state: state is never cached, so a read of it could not show a
    # cache keyed too coarsely.
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    manager = world.users["manager_a"]
    assert call(attempt_event("GET", attempt["id"], manager, "info")).status == 200
    as_trainee = manager.claims() | {
        "o": json.dumps({"id": manager.clerk_org_id, "rol": "trainee"})
    }
    reply = call(attempt_event("GET", attempt["id"], None, "info", claims=as_trainee))
    assert reply.status == 404


def test_an_admin_clears_only_their_own_orgs_cache(call, world: World, attempts_app) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    assert call(attempt_event("GET", attempt["id"], world.users["admin_a"], "info")).status == 200
    org_a = world.orgs["a"]
    size_before = attempts_app.cache.stats(org_a)["size"]
    assert size_before >= 1
    other = start(call, world.users["trainee_b1"], world.scenarios["b"])
    reply = call(
        attempt_event(
            "PATCH", other["id"], world.users["admin_b"], "optimize", {"operation": "clear_cache"}
        )
    )
    assert reply.status == 200
    assert attempts_app.cache.stats(org_a)["size"] == size_before


def test_a_plain_submit_keeps_a_score_written_while_in_progress(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update scenario_attempts set score = 72, feedback_text = 'from the webhook'"
            " where id = %s",
            [attempt["id"]],
        )
    reply = call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    assert (reply.body["score"], reply.body["feedback_text"]) == (72, "from the webhook")


@pytest.mark.parametrize(
    "suffix", ["../../other.wav", "x.wav", f"{uuid.uuid4()}.wav/../../x", f"{uuid.uuid4()}"]
)
def test_confirm_takes_only_keys_shaped_like_the_ones_issued(
    call, world: World, suffix: str
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"recordings/{trainee.org_id}/{attempt['id']}/{suffix}"
    reply = call(
        attempt_event("POST", attempt["id"], trainee, "upload", {"step": "confirm", "key": key})
    )
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "body.key"

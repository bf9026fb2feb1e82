"""Authorization is never stale: the functions cache who a caller is, but every
request's transaction checks the membership again (practice_enter), so a
demotion or a removal takes effect on the caller's next request, cache hits
included, and nothing is written under a role the caller no longer has."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, snapshot, start
from tests.support import User, World, http_event


@pytest.fixture
def member(database: MigratedDatabase, world: World) -> User:
    """A fresh admin of org A, to demote or remove."""
    base = world.users["admin_a"]
    user = User(f"user_fresh_{uuid.uuid4().hex[:8]}", base.clerk_org_id, "admin", base.org_id)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into org_members (org_id, user_id, role) values (%s, %s, 'admin')",
            [user.org_id, user.user_id],
        )
    return user


def _set_member(database: MigratedDatabase, user: User, sql: str) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(sql, [user.org_id, user.user_id])


def test_a_demoted_admin_loses_the_role_on_the_next_request_cache_hits_included(
    call, world: World, database: MigratedDatabase, member: User
) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    info = attempt_event("GET", attempt["id"], member, "info")
    assert call(info).status == 200  # cached for this admin's view now
    assert call(http_event("GET", "/me", user=member)).body["role"] == "admin"

    _set_member(
        database,
        member,
        "update org_members set role = 'trainee' where org_id = %s and user_id = %s",
    )
    refused = call(info)  # would be a cache hit: the membership is checked anyway
    assert refused.status == 403
    assert "role" in refused.problem["detail"]
    # Still holding an admin token, the caller is now what the database says.
    assert call(http_event("GET", "/me", user=member)).body["role"] == "trainee"
    assert call(info).status == 404  # a trainee does not see another trainee's attempt


def test_a_demoted_coach_cannot_score_and_nothing_is_written(
    call, world: World, database: MigratedDatabase, member: User
) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    assert call(http_event("GET", "/me", user=member)).status == 200  # principal cached
    _set_member(
        database,
        member,
        "update org_members set role = 'trainee' where org_id = %s and user_id = %s",
    )
    before = snapshot(database, attempt["id"])
    reply = call(attempt_event("POST", attempt["id"], member, "submit", {"score": 99}))
    assert reply.status == 403
    assert snapshot(database, attempt["id"]) == before


def test_a_removed_member_is_refused_on_the_next_request(
    call, world: World, database: MigratedDatabase, member: User
) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    state = attempt_event("GET", attempt["id"], member, "state")
    assert call(state).status == 200
    _set_member(
        database,
        member,
        "update org_members set deleted_at = now() where org_id = %s and user_id = %s",
    )
    assert call(state).status == 403
    assert call(http_event("GET", "/me", user=member)).status == 403


def test_a_token_above_the_stored_role_keeps_working_at_the_stored_role(call, world: World) -> None:
    trainee = world.users["trainee_a3"]
    claims = trainee.claims() | {"o": json.dumps({"id": trainee.clerk_org_id, "rol": "admin"})}
    for _ in range(2):  # resolved, then cached: neither is refused
        me = call(http_event("GET", "/me", claims=claims))
        assert (me.status, me.body["role"]) == (200, "trainee")

"""One verdict per attempt action: every action, in every status of the attempt,
by its owner, a teammate, the owner's manager and an admin, answers as the
README's verdict table says; and the batch `validate` says exactly what a bare
submit then does to the same attempt.

Statuses are crafted as the schema owner (an attempt is ended by the rules
under test otherwise); every request goes through the functions' handlers.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, snapshot, start
from tests.e2e.test_batch import batch_event
from tests.support import World

STATUSES = ("in_progress", "completed", "abandoned", "failed")
CALLERS = ("owner", "teammate", "manager", "admin")
WHO = {"owner": "trainee_a1", "teammate": "trainee_a2", "manager": "manager_a", "admin": "admin_a"}

# (method, action, body): the requests of the table.
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "save": ("PATCH", "save", {"answers": {"q": "new"}, "expected_version": 0}),
    "activity": ("POST", "activity", [{"event_type": "idle"}]),
    "submit": ("POST", "submit", {}),
    "abandon": ("POST", "submit", {"status": "abandoned"}),
    "answer": ("POST", "submit", {"answers": {"q": "by submit"}}),
    "score": ("POST", "submit", {"score": 80}),
    "upload": ("POST", "upload", {"content_type": "audio/webm", "size_bytes": 10}),
}

# The README's verdict table: the status each caller gets, per attempt status.
# A teammate never sees another trainee's attempt (404); a coach (the owner's
# manager, an admin) reviews: scores a completed attempt and cleans up one in
# progress (abandons it, sending nothing else), never writes the trainee's work.
EXPECTED: dict[str, dict[str, tuple[int, int, int, int]]] = {
    #                owner teammate manager admin
    "in_progress": {
        "save": (200, 404, 403, 403),
        "activity": (201, 404, 403, 403),
        "submit": (200, 404, 403, 403),
        "abandon": (200, 404, 200, 200),
        "answer": (200, 404, 403, 403),
        "score": (403, 404, 409, 409),
        "upload": (201, 404, 403, 403),
    },
    "completed": {
        "save": (409, 404, 403, 403),
        "activity": (409, 404, 403, 403),
        "submit": (200, 404, 200, 200),
        "abandon": (409, 404, 409, 409),
        "answer": (409, 404, 403, 403),
        "score": (403, 404, 200, 200),
        "upload": (201, 404, 403, 403),
    },
    "abandoned": {
        "save": (409, 404, 403, 403),
        "activity": (409, 404, 403, 403),
        "submit": (200, 404, 200, 200),
        "abandon": (200, 404, 200, 200),
        "answer": (409, 404, 403, 403),
        "score": (403, 404, 409, 409),
        "upload": (409, 404, 403, 403),
    },
    "failed": {
        "save": (409, 404, 403, 403),
        "activity": (409, 404, 403, 403),
        "submit": (200, 404, 200, 200),
        "abandon": (409, 404, 409, 409),
        "answer": (409, 404, 403, 403),
        "score": (403, 404, 409, 409),
        "upload": (409, 404, 403, 403),
    },
}


def crafted(call, database: MigratedDatabase, world: World, status: str, answers: bool) -> str:
    """An attempt of the owner in ``status``, with answers or none."""
    attempt = start(call, world.users[WHO["owner"]], world.scenarios["a"])
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update scenario_attempts set status = %s, answers = %s,"
            " ended_at = case when %s <> 'in_progress' then now() end where id = %s",
            [status, '{"q": "draft"}' if answers else "{}", status, attempt["id"]],
        )
    return attempt["id"]


def current_version(database: MigratedDatabase, attempt_id: str) -> int:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select version from scenario_attempts where id = %s", [attempt_id]
        ).fetchone()[0]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("request_name", list(REQUESTS))
@pytest.mark.parametrize("caller", CALLERS)
def test_each_action_answers_as_the_verdict_table_says(
    call, world: World, database: MigratedDatabase, status: str, request_name: str, caller: str
) -> None:
    attempt_id = crafted(call, database, world, status, answers=True)
    method, action, body = REQUESTS[request_name]
    if request_name == "save":
        body = body | {"expected_version": current_version(database, attempt_id)}
    before = snapshot(database, attempt_id)
    reply = call(attempt_event(method, attempt_id, world.users[WHO[caller]], action, body))
    expected = EXPECTED[status][request_name][CALLERS.index(caller)]
    assert reply.status == expected, (status, request_name, caller, reply.body)
    if expected >= 400:
        assert snapshot(database, attempt_id) == before, "a refusal wrote something"


def test_a_coach_cleaning_up_ends_the_attempt_as_abandoned_and_is_recorded(
    call, world: World, database: MigratedDatabase
) -> None:
    attempt_id = crafted(call, database, world, "in_progress", answers=True)
    manager = world.users["manager_a"]
    reply = call(attempt_event("POST", attempt_id, manager, "submit", {"status": "abandoned"}))
    assert reply.status == 200
    assert (reply.body["status"], reply.body["ended_by"]) == ("abandoned", manager.user_id)
    assert reply.body["score"] is None
    with psycopg.connect(database.admin_url) as conn:
        answers, facts = conn.execute(
            "select answers, (select count(*) from fact_scenario_attempts f"
            " where f.attempt_id = a.id) from scenario_attempts a where a.id = %s",
            [attempt_id],
        ).fetchone()
    # The trainee's answers stay theirs; an abandoned attempt is no completion.
    assert (answers, facts) == ({"q": "draft"}, 0)


def test_the_owner_ending_their_attempt_is_recorded_as_its_ender(call, world: World) -> None:
    owner = world.users["trainee_a1"]
    attempt = start(call, owner, world.scenarios["a"])
    reply = call(attempt_event("POST", attempt["id"], owner, "submit", {}))
    assert (reply.body["status"], reply.body["ended_by"]) == ("completed", owner.user_id)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("answers", [False, True], ids=["no answers", "answers"])
def test_validate_says_what_a_bare_submit_then_does(
    call,
    call_batch,
    world: World,
    database: MigratedDatabase,
    status: str,
    caller: str,
    answers: bool,
) -> None:
    attempt_id = crafted(call, database, world, status, answers)
    user = world.users[WHO[caller]]
    (predicted,) = call_batch(batch_event(user, "validate", [attempt_id])).body["results"]
    version = current_version(database, attempt_id)
    reply = call(attempt_event("POST", attempt_id, user, "submit", {}))
    ended_now = reply.status == 200 and current_version(database, attempt_id) == version + 1
    if predicted["status"] == "not_found":
        assert reply.status == 404
    elif predicted["can_submit"]:
        assert ended_now, reply.body
        assert predicted["problems"] == []
    elif predicted["problems"] == ["forbidden"]:
        assert reply.status == 403
    else:
        # Ended before: a bare submit is a repeat and answers the stored result.
        assert predicted["problems"] == ["not_in_progress"]
        assert (reply.status, ended_now) == (200, False)
    assert predicted["warnings"] == (
        [] if answers or predicted["status"] == "not_found" else ["no_answers"]
    )


def test_validate_and_batch_submit_agree_item_by_item(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    manager = world.users["manager_a"]
    ids = [crafted(call, database, world, status, True) for status in STATUSES]
    ids.append(str(uuid.uuid4()))
    predicted = call_batch(batch_event(manager, "validate", ids)).body["results"]
    submitted = call_batch(batch_event(manager, "batch_submit", ids)).body["results"]
    outcome_of = {"valid": "submitted", "not_found": "not_found"}
    for before, after in zip(predicted, submitted, strict=True):
        if before["status"] in outcome_of:
            assert after["status"] == outcome_of[before["status"]]
        else:
            problem = {"forbidden": "forbidden", "not_in_progress": "already_ended"}
            assert after["status"] == problem[before["problems"][0]]

"""What an outside probe once broke, each pinned: a coach's score after the
trainee's submit, activity on an ended attempt, claims Clerk never issues,
bodies that are not UTF-8, parse errors that echoed internals, container
internals another org could probe, and a /health that asked the breaker."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, start
from tests.support import World, http_event


def _row(database: MigratedDatabase, attempt_id: str) -> dict[str, Any]:
    with psycopg.connect(database.admin_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "select a.status, a.version, a.score, a.manager_comments, a.scored_by,"
            " a.answers, f.score as fact_score,"
            " (select count(*) from attempt_activity v where v.attempt_id = a.id) as events"
            " from scenario_attempts a left join fact_scenario_attempts f on f.attempt_id = a.id"
            " where a.id = %s",
            [attempt_id],
        ).fetchone()


# -- a coach scores after the trainee's submit --------------------------------


def test_a_managers_score_after_the_trainees_submit_is_stored_with_its_scorer(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee, manager = world.users["trainee_a1"], world.users["manager_a"]
    attempt = start(call, trainee, world.scenarios["a"])
    assert call(attempt_event("POST", attempt["id"], trainee, "submit", {})).status == 200
    scored = call(
        attempt_event(
            "POST", attempt["id"], manager, "submit", {"score": 88, "manager_comments": "good"}
        )
    )
    assert scored.status == 200, scored.body
    assert (scored.body["score"], scored.body["manager_comments"]) == (88, "good")
    row = _row(database, attempt["id"])
    assert (row["score"], row["manager_comments"], row["scored_by"]) == (
        88,
        "good",
        manager.user_id,
    )
    assert row["fact_score"] == 88  # the warehouse follows

    rescored = call(attempt_event("POST", attempt["id"], manager, "submit", {"score": 91.5}))
    assert rescored.body["score"] == 91.5
    row = _row(database, attempt["id"])
    assert (row["score"], row["manager_comments"], row["fact_score"]) == (91.5, "good", 91.5)


def test_after_completion_a_trainee_still_cannot_score_and_nothing_changes(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    before = _row(database, attempt["id"])
    reply = call(attempt_event("POST", attempt["id"], trainee, "submit", {"score": 100}))
    assert reply.status == 403
    assert _row(database, attempt["id"]) == before


@pytest.mark.parametrize(
    "body", [{"answers": {"late": True}}, {"status": "abandoned"}, {"transcript_text": "late"}]
)
def test_what_can_no_longer_change_is_refused_not_dropped(
    call, world: World, database: MigratedDatabase, body: dict[str, Any]
) -> None:
    trainee, manager = world.users["trainee_a1"], world.users["manager_a"]
    attempt = start(call, trainee, world.scenarios["a"])
    call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    before = _row(database, attempt["id"])
    reply = call(attempt_event("POST", attempt["id"], trainee, "submit", body))
    assert reply.status == 409, reply.body
    assert reply.problem["fields"] == list(body)
    # A coach's score beside it: the trainee's work is never a coach's to send
    # (403), and a status that would change is as refused for them (409).
    reply = call(attempt_event("POST", attempt["id"], manager, "submit", body | {"score": 70}))
    assert reply.status == (409 if "status" in body else 403), reply.body
    assert _row(database, attempt["id"]) == before


def test_a_replayed_submit_answers_the_stored_result_without_a_write(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    first = call(
        attempt_event("POST", attempt["id"], trainee, "submit", {"answers": {"q": 1}})
    ).body
    again = call(attempt_event("POST", attempt["id"], trainee, "submit", {"answers": {"q": 1}}))
    assert (again.status, again.body["version"]) == (200, first["version"])
    assert _row(database, attempt["id"])["version"] == first["version"]


def test_a_score_racing_the_trainees_submit_is_applied_or_refused_never_lost(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee, manager = world.users["trainee_a1"], world.users["manager_a"]
    for _ in range(5):
        attempt = start(call, trainee, world.scenarios["a"])
        barrier = threading.Barrier(2)
        statuses: dict[str, int] = {}

        def send(who, body, attempt_id=attempt["id"], barrier=barrier, statuses=statuses) -> None:
            barrier.wait()
            statuses[who.user_id] = call(
                attempt_event("POST", attempt_id, who, "submit", body)
            ).status

        threads = [
            threading.Thread(target=send, args=(trainee, {})),
            threading.Thread(target=send, args=(manager, {"score": 64})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        # The score lands when the attempt had completed, and is refused (409,
        # to be sent again) when it had not: never dropped, never half-applied.
        assert statuses[trainee.user_id] == 200
        scored = statuses[manager.user_id]
        assert scored in (200, 409)
        row = _row(database, attempt["id"])
        expected = 64 if scored == 200 else None
        assert (row["status"], row["score"], row["fact_score"]) == ("completed", expected, expected)


# -- activity -------------------------------------------------------------------


def test_activity_on_an_ended_attempt_is_409_and_logs_nothing(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    reply = call(
        attempt_event("POST", attempt["id"], trainee, "activity", [{"event_type": "idle"}])
    )
    assert reply.status == 409
    assert "no longer in progress" in reply.problem["detail"]
    assert _row(database, attempt["id"])["events"] == 0


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "before-start", "9999-12-31T00:00:00Z"])
def test_activity_outside_the_attempts_life_is_409_and_logs_nothing(
    call, world: World, database: MigratedDatabase, when: str
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    if when == "before-start":
        when = (datetime.now(UTC) - timedelta(minutes=6)).isoformat()
    events = [{"event_type": "idle"}, {"event_type": "idle", "occurred_at": when}]
    reply = call(attempt_event("POST", attempt["id"], trainee, "activity", events))
    assert reply.status == 409
    assert "occurred_at" in reply.problem["detail"]
    assert _row(database, attempt["id"])["events"] == 0


# -- claims and bodies ------------------------------------------------------------


def _claims_with(world: World, **changes: Any) -> dict[str, Any]:
    trainee = world.users["trainee_a1"]
    org = {"id": trainee.clerk_org_id, "rol": "trainee"} | changes.pop("o", {})
    return trainee.claims() | {"o": json.dumps(org)} | changes


@pytest.mark.parametrize(
    "changes",
    [
        {"o": {"rol": ["admin"]}},
        {"o": {"rol": {"admin": True}}},
        {"o": {"id": "org_" + "x" * 4000}},
        {"o": {"id": 12345}},
        {"sub": "user_\ud800"},
        {"sub": "user_" + "u" * 5000},
        {"sub": "user with spaces"},
    ],
    ids=[
        "rol-list",
        "rol-object",
        "org-4kb",
        "org-number",
        "sub-surrogate",
        "sub-5kb",
        "sub-space",
    ],
)
def test_claims_clerk_never_issues_are_401(call, world: World, changes: dict[str, Any]) -> None:
    reply = call(http_event("GET", "/me", claims=_claims_with(world, **changes)))
    assert reply.status == 401, reply.body
    assert reply.problem["title"] == "Unauthorized"


def test_a_body_that_is_not_utf8_is_400_and_starts_nothing(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    raw = (
        b'{"scenario_id": "%s", "metadata": {"name": "caf\xe9"}}'
        % str(world.scenarios["a"]).encode()
    )
    event = http_event("POST", "/attempts", user=trainee, body="{}")
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    with psycopg.connect(database.admin_url) as conn:
        count = "select count(*) from scenario_attempts where clerk_user_id = %s"
        before = conn.execute(count, [trainee.user_id]).fetchone()[0]
        reply = call(event)
        assert reply.status == 400
        assert "UTF-8" in reply.problem["detail"]
        assert conn.execute(count, [trainee.user_id]).fetchone()[0] == before


def test_a_400_does_not_echo_the_interpreters_words(call, world: World) -> None:
    body = f'{{"scenario_id": "{world.scenarios["a"]}", "metadata": {{"n": {"9" * 5000}}}}}'
    reply = call(http_event("POST", "/attempts", user=world.users["trainee_a1"], body=body))
    assert reply.status == 400
    assert "sys." not in reply.problem["detail"]
    assert "digits" not in reply.problem["detail"]


# -- container internals and health ------------------------------------------------


def test_the_optimization_report_is_404_for_another_orgs_attempt_and_shows_no_traffic(
    call, world: World
) -> None:
    foreign = start(call, world.users["trainee_a1"], world.scenarios["a"])
    admin_b = world.users["admin_b"]
    query = {"type": "optimization"}
    reply = call(attempt_event("GET", foreign["id"], admin_b, "stats", query=query))
    assert reply.status == 404
    own = start(call, world.users["trainee_b1"], world.scenarios["b"])
    report = call(attempt_event("GET", own["id"], admin_b, "stats", query=query))
    assert report.status == 200
    assert set(report.body["pool"]) == {"pool_min", "pool_max", "pool_size"}


def test_health_tells_the_truth_when_the_breaker_is_wrongly_open(call, attempts_app) -> None:
    breaker = attempts_app.db.breaker
    for _ in range(breaker.threshold):
        breaker.record_failure()
    assert breaker.state == "open"
    reply = call(http_event("GET", "/health"))
    assert (reply.status, reply.body) == (200, {"status": "ok"})
    assert breaker.state == "closed"  # and the next request goes through


# -- Idempotency-Key on the single endpoint -----------------------------------------


def test_a_retried_activity_with_its_key_is_logged_once(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    events = [{"event_type": "call_started"}, {"event_type": "focus_lost"}]
    key = {"Idempotency-Key": f"activity-{attempt['id']}"}
    first = call(attempt_event("POST", attempt["id"], trainee, "activity", events, headers=key))
    again = call(attempt_event("POST", attempt["id"], trainee, "activity", events, headers=key))
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert again.headers["idempotent-replayed"] == "true"
    assert _row(database, attempt["id"])["events"] == 2


def test_an_upload_refuses_a_key_rather_than_ignore_it(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    body = {"content_type": "audio/wav", "size_bytes": 10}
    reply = call(
        attempt_event(
            "POST", attempt["id"], trainee, "upload", body, headers={"Idempotency-Key": "k"}
        )
    )
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "header.Idempotency-Key"

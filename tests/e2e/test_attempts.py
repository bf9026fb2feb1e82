"""The consolidated attempt endpoint, every route and action, through API Gateway
v2 events into `functions.attempts.app.handler` against the real database."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.support import User, World, http_event


def start(call, user: User, scenario: uuid.UUID, **extra: Any) -> dict[str, Any]:
    reply = call(
        http_event("POST", "/attempts", user=user, body={"scenario_id": str(scenario)} | extra)
    )
    assert reply.status == 201, reply.body
    return reply.body


def attempt_event(
    method: str, attempt_id: Any, user: User | None, action: str | None, body: Any = None, **kw: Any
) -> dict[str, Any]:
    query = dict(kw.pop("query", {}))
    if action is not None:
        query["action"] = action
    return http_event(
        method,
        f"/attempts/{attempt_id}",
        user=user,
        query=query,
        body=body,
        route="/attempts/{attemptId}",
        path_parameters={"attemptId": str(attempt_id)},
        **kw,
    )


def snapshot(database: MigratedDatabase, attempt_id: Any) -> tuple:
    """Everything a refused request might have touched: the attempt row as JSON,
    its activity and the owner's attempt count."""
    return owner_row(
        database,
        "select to_jsonb(a), (select count(*) from attempt_activity v where v.attempt_id = a.id),"
        " (select count(*) from scenario_attempts o where o.clerk_user_id = a.clerk_user_id)"
        " from scenario_attempts a where a.id = %s",
        [attempt_id],
    )


def owner_row(database: MigratedDatabase, sql: str, params: list[Any]) -> tuple:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(sql, params).fetchone()


# -- start -------------------------------------------------------------------


def test_start_answers_201_with_state_location_and_etag(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    reply = call(
        http_event(
            "POST", "/attempts", user=trainee, body={"scenario_id": str(world.scenarios["a"])}
        )
    )
    assert reply.status == 201
    assert reply.body["status"] == "in_progress"
    assert reply.body["version"] == 1
    assert reply.body["clerk_user_id"] == trainee.user_id
    assert reply.headers["location"] == f"/attempts/{reply.body['id']}"
    assert reply.headers["etag"] == '"1"'


def test_start_on_a_built_in_scenario_and_on_own_assignment(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    assert start(call, trainee, world.scenarios["builtin"])["scenario_id"] == str(
        world.scenarios["builtin"]
    )
    body = start(call, trainee, world.scenarios["a"], assignment_id=str(world.assignments["a1"]))
    assert body["assignment_id"] == str(world.assignments["a1"])


def test_start_refuses_another_orgs_scenario_and_someone_elses_assignment(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee, other = world.users["trainee_a1"], world.users["trainee_a2"]
    count = "select count(*) from scenario_attempts where clerk_user_id = %s"
    before = [owner_row(database, count, [who.user_id])[0] for who in (trainee, other)]
    reply = call(
        http_event(
            "POST", "/attempts", user=trainee, body={"scenario_id": str(world.scenarios["b"])}
        )
    )
    # Another org's scenario and someone else's assignment are, to the caller, none.
    assert reply.status == 404
    assert reply.problem["errors"][0]["field"] == "body.scenario_id"
    body = {"scenario_id": str(world.scenarios["a"]), "assignment_id": str(world.assignments["a1"])}
    reply = call(http_event("POST", "/attempts", user=other, body=body))
    assert reply.status == 404
    assert reply.problem["errors"][0]["field"] == "body.assignment_id"
    assert [owner_row(database, count, [who.user_id])[0] for who in (trainee, other)] == before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"scenario_id": "not-a-uuid"}, 422, "body.scenario_id"),
        ({}, 422, "body.scenario_id"),
        ({"scenario_id": str(uuid.uuid4()), "surprise": 1}, 422, "body.surprise"),
        ("{not json", 400, None),
    ],
)
def test_start_with_a_malformed_body_names_the_problem(
    call, world: World, body: Any, status: int, field: str | None
) -> None:
    reply = call(http_event("POST", "/attempts", user=world.users["trainee_a1"], body=body))
    assert reply.status == status
    if field:
        assert field in [e["field"] for e in reply.problem["errors"]]


# -- state and info ----------------------------------------------------------


def test_state_has_an_etag_and_if_none_match_gives_304(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    reply = call(attempt_event("GET", attempt["id"], trainee, "state"))
    assert reply.status == 200
    assert reply.body == attempt  # nothing happened since the start answered it
    assert reply.headers["etag"] == '"1"'
    reply = call(
        attempt_event("GET", attempt["id"], trainee, "state", headers={"If-None-Match": '"1"'})
    )
    assert reply.status == 304
    default = call(attempt_event("GET", attempt["id"], trainee, None))
    assert default.status == 200
    assert default.body == attempt


def test_info_joins_scenario_assignment_and_trainee(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    scenario, assignment = world.scenarios["a"], world.assignments["a1"]
    attempt = start(call, trainee, scenario, assignment_id=str(assignment))
    reply = call(attempt_event("GET", attempt["id"], world.users["manager_a"], "info"))
    assert reply.status == 200
    title, category, due_at = owner_row(
        database,
        "select s.title, s.category, a.due_at from scenarios s, assignments a"
        " where s.id = %s and a.id = %s",
        [scenario, assignment],
    )
    assert reply.body["scenario"] == {
        "id": str(scenario),
        "title": title,
        "difficulty": "beginner",
        "category": category,
    }
    assignment_info = reply.body["assignment"]
    assert (assignment_info["id"], assignment_info["required"]) == (str(assignment), True)
    assert datetime.fromisoformat(assignment_info["due_at"]) == due_at
    assert reply.body["trainee"] == {"user_id": trainee.user_id, "display_name": "Trainee A1"}
    same = ("id", "status", "started_at", "ended_at", "duration_seconds", "submitted_at")
    assert {k: reply.body[k] for k in same} == {k: attempt[k] for k in same}


# -- save --------------------------------------------------------------------


def test_save_bumps_the_version_and_a_stale_save_is_409_with_the_current_version(
    call, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    body = {"answers": {"q1": "yes"}, "auto_save_data": {"progress": 50}, "expected_version": 1}
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", body))
    assert reply.status == 200
    assert reply.body["version"] == 2
    assert reply.headers["etag"] == '"2"'
    stale = call(attempt_event("PATCH", attempt["id"], trainee, "save", body))
    assert stale.status == 409
    assert stale.problem["current_version"] == 2
    state = call(attempt_event("GET", attempt["id"], trainee, "state")).body
    assert (state["answers"], state["auto_save_data"]) == ({"q1": "yes"}, {"progress": 50})


def test_save_takes_the_version_from_if_match(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    event = attempt_event(
        "PATCH", attempt["id"], trainee, "save", {"answers": {"q": 1}}, headers={"If-Match": '"1"'}
    )
    assert call(event).body["version"] == 2


def test_save_without_a_version_is_428(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", {"answers": {}}))
    assert reply.status == 428
    assert reply.problem["errors"][0]["field"] == "body.expected_version"


def test_save_by_someone_other_than_the_owner_is_403(
    call, world: World, database: MigratedDatabase
) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    before = snapshot(database, attempt["id"])
    body = {"answers": {"by": "manager"}, "expected_version": 1}
    reply = call(attempt_event("PATCH", attempt["id"], world.users["manager_a"], "save", body))
    assert reply.status == 403
    assert snapshot(database, attempt["id"]) == before


def test_save_above_the_body_limit_is_413(call, world: World, attempts_app) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    big = {"answers": {"blob": "x" * attempts_app.settings.max_body_bytes}, "expected_version": 1}
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", big))
    assert reply.status == 413
    assert reply.problem["title"] == "Content Too Large"  # RFC 9110
    assert call(attempt_event("GET", attempt["id"], trainee, "state")).body["version"] == 1


def test_save_after_submit_is_409(call, world: World, database: MigratedDatabase) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    assert call(attempt_event("POST", attempt["id"], trainee, "submit", {})).status == 200
    before = snapshot(database, attempt["id"])
    body = {"answers": {"late": True}, "expected_version": 2}
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", body))
    assert reply.status == 409
    assert "no longer in progress" in reply.problem["detail"]
    assert snapshot(database, attempt["id"]) == before


def test_fifty_concurrent_saves_with_one_version_let_exactly_one_win(
    database: MigratedDatabase, world: World, attempts_app
) -> None:
    from practice.attempts.models import Draft
    from practice.attempts.service import AttemptService
    from practice.core.cache import TenantCache
    from practice.core.config import Settings
    from practice.core.db import Database
    from practice.core.errors import Conflict
    from practice.core.identity import Principal, Role

    trainee = world.users["trainee_a1"]
    principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
    attempt_id = attempts_app.attempts.start(principal, start_request(world)).id
    settings = Settings(database_url=database.app_url, db_pool_min=1, db_pool_max=1)
    services = [AttemptService(Database(settings), TenantCache(), settings) for _ in range(50)]
    for service in services:
        service.db.open()
        service.db.pool.wait(timeout=30)
    barrier = threading.Barrier(50)
    outcomes: list[tuple[int, str]] = []

    def save(index: int) -> None:
        draft = Draft(answers={"writer": index}, expected_version=1)
        barrier.wait()
        try:
            services[index].save(principal, attempt_id, draft)
            outcomes.append((200, str(index)))
        except Conflict as exc:
            outcomes.append((409, str(exc.extra.get("current_version"))))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for service in services:
        service.db.close()
    winners = [who for status, who in outcomes if status == 200]
    assert len(winners) == 1
    assert sorted(o for o in outcomes if o[0] == 409) == [(409, "2")] * 49
    version, answers = owner_row(
        database, "select version, answers from scenario_attempts where id = %s", [attempt_id]
    )
    assert version == 2
    assert answers == {"writer": int(winners[0])}


def start_request(world: World, org: str = "a"):
    """A validated start body for an org's scenario, for tests below the handler."""
    from practice.attempts.models import StartAttempt

    return StartAttempt(scenario_id=world.scenarios[org])


# -- activity ----------------------------------------------------------------


def test_activity_appends_events_as_a_list_or_an_object(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    events = [
        {"event_type": "call_started", "payload": {"n": 1}},
        {
            "event_type": "answer_changed",
            "payload": {"q": "q1"},
            # A little before the attempt started: within the clock skew allowed.
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
        },
    ]
    reply = call(attempt_event("POST", attempt["id"], trainee, "activity", events))
    assert (reply.status, reply.body["inserted"]) == (201, 2)
    reply = call(attempt_event("POST", attempt["id"], trainee, "activity", {"events": events[:1]}))
    assert reply.body["inserted"] == 1
    (count,) = owner_row(
        database, "select count(*) from attempt_activity where attempt_id = %s", [attempt["id"]]
    )
    assert count == 3


def test_activity_refuses_unknown_types_and_overlong_lists(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    before = snapshot(database, attempt["id"])
    reply = call(
        attempt_event("POST", attempt["id"], trainee, "activity", [{"event_type": "teleported"}])
    )
    assert reply.status == 422
    assert any("event_type" in e["field"] for e in reply.problem["errors"])
    many = {"events": [{"event_type": "idle"}] * 101}
    reply = call(attempt_event("POST", attempt["id"], trainee, "activity", many))
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"].startswith("body")
    assert snapshot(database, attempt["id"]) == before


# -- submit ------------------------------------------------------------------


def _counters(database: MigratedDatabase, user: User, scenario: uuid.UUID) -> tuple:
    return owner_row(
        database,
        "select (select times_completed from user_scenario_progress"
        "         where org_id = %(org)s and user_id = %(user)s and scenario_id = %(s)s),"
        "       (select total_times_used from scenario_metadata"
        "         where org_id = %(org)s and scenario_id = %(s)s),"
        "       (select count(*) from fact_scenario_attempts"
        "         where org_id = %(org)s and user_id = %(user)s and scenario_id = %(s)s)",
        {"org": user.org_id, "user": user.user_id, "s": scenario},
    )


def test_submit_ends_the_attempt_once_and_moves_counters_once(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a2"]
    scenario = world.scenarios["builtin"]
    attempt = start(call, trainee, scenario)
    # Begun ten minutes ago, so the duration cannot pass as 0: what the
    # statement's greatest(0, …) answers for a start or end time gone wrong.
    owner_row(
        database,
        "update scenario_attempts set started_at = now() - interval '600 seconds'"
        " where id = %s returning id",
        [attempt["id"]],
    )
    before = _counters(database, trainee, scenario)
    first = call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    assert first.status == 200
    assert first.body["status"] == "completed"
    started = datetime.fromisoformat(first.body["started_at"])
    ended = datetime.fromisoformat(first.body["ended_at"])
    assert timedelta(seconds=600) <= ended - started < timedelta(seconds=660)
    assert first.body["duration_seconds"] == round((ended - started).total_seconds())
    again = call(attempt_event("POST", attempt["id"], trainee, "submit", {}))
    assert again.status == 200
    assert again.body == first.body
    after = _counters(database, trainee, scenario)
    assert (after[0] - (before[0] or 0), after[1] - (before[1] or 0), after[2] - before[2]) == (
        1,
        1,
        1,
    )


def test_concurrent_submits_move_counters_and_fact_once(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a3"]
    scenario = world.scenarios["a"]
    attempt = start(call, trainee, scenario)
    before = _counters(database, trainee, scenario)
    barrier = threading.Barrier(2)
    replies: list[Any] = []

    def submit() -> None:
        barrier.wait()
        replies.append(call(attempt_event("POST", attempt["id"], trainee, "submit", {})))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].body == replies[1].body
    after = _counters(database, trainee, scenario)
    assert (after[0] - (before[0] or 0), after[1] - (before[1] or 0), after[2] - before[2]) == (
        1,
        1,
        1,
    )


def test_a_trainee_cannot_score_but_their_manager_can(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    before = snapshot(database, attempt["id"])
    reply = call(attempt_event("POST", attempt["id"], trainee, "submit", {"score": 100}))
    assert reply.status == 403
    assert "nobody scores their own attempt" in reply.problem["detail"]
    assert snapshot(database, attempt["id"]) == before
    scored = {"score": 87.5, "kpis": {"talk_ms": 6000, "listen_ms": 4000}, "feedback_text": "Good"}
    manager = world.users["manager_a"]
    # Scored once it has completed, not while the trainee is still practising.
    assert call(attempt_event("POST", attempt["id"], manager, "submit", scored)).status == 409
    assert snapshot(database, attempt["id"]) == before
    assert call(attempt_event("POST", attempt["id"], trainee, "submit", {})).status == 200
    reply = call(attempt_event("POST", attempt["id"], manager, "submit", scored))
    assert reply.status == 200
    assert reply.body["score"] == 87.5
    assert reply.body["scored_by"] == world.users["manager_a"].user_id


# -- statistics and maintenance ----------------------------------------------


# The statistics' figures: tests/e2e/test_attempt_statistics.py.


@pytest.fixture
def own_scenario(database: MigratedDatabase, world: World) -> uuid.UUID:
    """A scenario of org A of this test alone, so every attempt on it is the test's."""
    (scenario_id,) = owner_row(
        database,
        "insert into scenarios (org_id, title, description, role, difficulty, instructions,"
        " context, visibility) values (%s, %s, 'd', 'sales', 'beginner', 'i', 'c', 'org')"
        " returning id",
        [world.orgs["a"], f"Own {uuid.uuid4().hex[:8]}"],
    )
    return scenario_id


def _idle_attempt(
    database: MigratedDatabase,
    user: User,
    scenario: uuid.UUID,
    *,
    last_activity: timedelta | None = None,
    updated: timedelta = timedelta(0),
    status: str = "in_progress",
) -> str:
    """An attempt whose last activity (or, without one, last update) lies that long ago."""
    (attempt_id,) = owner_row(
        database,
        "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, status,"
        " last_activity_at, updated_at) values (%s, %s, %s, %s, now() - %s::interval,"
        " now() - %s::interval) returning id::text",
        [user.org_id, user.user_id, scenario, status, last_activity, updated],
    )
    return attempt_id


def test_active_attempts_show_each_ones_idle_minutes_most_idle_first(
    call, world: World, database: MigratedDatabase, own_scenario: uuid.UUID
) -> None:
    """Idle since the last activity, else since the last update (floored to whole
    minutes); a manager sees their team's, an admin the org's, a trainee nothing."""
    a1, a2, a3 = (world.users[n] for n in ("trainee_a1", "trainee_a2", "trainee_a3"))
    quiet = _idle_attempt(database, a1, own_scenario, last_activity=timedelta(minutes=17.5))
    untouched = _idle_attempt(database, a2, own_scenario, updated=timedelta(minutes=42.25))
    fresh = _idle_attempt(database, a1, own_scenario)
    _idle_attempt(database, a1, own_scenario, updated=timedelta(hours=5), status="completed")
    # Trainee A3 is manager A2's: manager A does not see this one.
    other_team = _idle_attempt(database, a3, own_scenario, last_activity=timedelta(minutes=90))
    query = {"type": "active"}

    def active(viewer: str) -> list[tuple[str, str, int]]:
        reply = call(attempt_event("GET", fresh, world.users[viewer], "stats", query=query))
        assert reply.status == 200, reply.body
        assert reply.body["scenario_id"] == str(own_scenario)
        return [
            (a["attempt_id"], a["display_name"], a["idle_minutes"]) for a in reply.body["attempts"]
        ]

    team = [(untouched, "Trainee A2", 42), (quiet, "Trainee A1", 17), (fresh, "Trainee A1", 0)]
    assert active("manager_a") == team
    assert active("admin_a") == [(other_team, "Trainee A3", 90), *team]
    reply = call(attempt_event("GET", fresh, a1, "stats", query=query))
    assert reply.status == 403


def test_optimization_and_optimize_for_admins_only(call, world: World, attempts_app) -> None:
    admin, manager = world.users["admin_a"], world.users["manager_a"]
    org, cache = world.orgs["a"], attempts_app.cache
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    reply = call(
        attempt_event("GET", attempt["id"], admin, "stats", query={"type": "optimization"})
    )
    assert reply.status == 200
    # This container's own figures, as they stand once the report is made.
    settings = attempts_app.settings
    assert reply.body["cache"] == cache.stats(org)
    assert reply.body["pool"] | {"pool_size": None} == {
        "pool_min": settings.db_pool_min,
        "pool_max": settings.db_pool_max,
        "pool_size": None,
    }
    assert 1 <= reply.body["pool"]["pool_size"] <= settings.db_pool_max
    assert reply.body["breaker"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "threshold": settings.breaker_failure_threshold,
        "open_seconds": settings.breaker_first_open_seconds,
    }
    forbidden = call(
        attempt_event("GET", attempt["id"], manager, "stats", query={"type": "optimization"})
    )
    assert forbidden.status == 403
    missing = str(uuid.uuid4())
    preload = {"operation": "preload", "attempt_ids": [attempt["id"], missing]}
    reply = call(attempt_event("PATCH", attempt["id"], admin, "optimize", preload))
    assert reply.status == 200
    assert reply.body == {"operation": "preload", "preloaded": 1, "not_found": [missing]}
    before = cache.stats(org)
    assert call(attempt_event("GET", attempt["id"], admin, "info")).status == 200
    after = cache.stats(org)
    # Preloaded, as it said: the info is served from the cache.
    assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"])

    size = cache.stats(org)["size"]
    reply = call(
        attempt_event("PATCH", attempt["id"], admin, "optimize", {"operation": "clear_cache"})
    )
    assert reply.status == 200
    assert reply.body == {"operation": "clear_cache", "cleared": size}
    assert cache.stats(org)["size"] == 0
    assert (
        call(
            attempt_event("PATCH", attempt["id"], manager, "optimize", {"operation": "clear_cache"})
        ).status
        == 403
    )


def test_batch_moved_permanently(call, world: World) -> None:
    reply = call(attempt_event("POST", uuid.uuid4(), world.users["trainee_a1"], "batch", {}))
    assert reply.status == 308
    assert reply.headers["location"] == "/attempts/batch"


@pytest.mark.parametrize(("method", "action"), [("GET", "teleport"), ("PATCH", "submit")])
def test_an_unknown_action_names_the_field(call, world: World, method: str, action: str) -> None:
    reply = call(attempt_event(method, uuid.uuid4(), world.users["trainee_a1"], action, {}))
    assert reply.status == 422
    assert [e["field"] for e in reply.problem["errors"]] == ["query.action"]


def test_a_post_to_an_attempt_without_an_action_is_405_naming_the_methods(
    call, world: World
) -> None:
    # No operation lives at POST /attempts/{id} itself: only its ?action= forms.
    reply = call(attempt_event("POST", uuid.uuid4(), world.users["trainee_a1"], None, {}))
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, PATCH"


def test_a_malformed_attempt_id_names_the_path_parameter(call, world: World) -> None:
    reply = call(attempt_event("GET", "not-a-uuid", world.users["trainee_a1"], "state"))
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "path.attemptId"


# -- tenancy -----------------------------------------------------------------

ACTIONS = [
    ("GET", "state", None, {}),
    ("GET", "info", None, {}),
    ("GET", "stats", None, {"type": "stats"}),
    ("GET", "stats", None, {"type": "active"}),
    ("PATCH", "save", {"answers": {}, "expected_version": 1}, {}),
    ("POST", "activity", [{"event_type": "idle"}], {}),
    ("POST", "submit", {}, {}),
    ("POST", "upload", {"content_type": "audio/webm", "size_bytes": 10}, {}),
    (
        "POST",
        "upload",
        {"step": "confirm", "key": f"recordings/{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4()}.webm"},
        {},
    ),
]


# A trainee is refused active monitoring by role (403) before any lookup, so that
# one pair is covered by test_active_attempts_show_each_ones_idle_minutes_most_idle_first.
INTRUSIONS = [
    (intruder, *action)
    for intruder in ("admin_b", "trainee_a2")
    for action in ACTIONS
    if not (intruder == "trainee_a2" and action[3].get("type") == "active")
]


@pytest.mark.parametrize(("intruder", "method", "action", "body", "query"), INTRUSIONS)
def test_another_org_or_a_teammate_gets_404(
    call,
    world: World,
    database: MigratedDatabase,
    intruder: str,
    method: str,
    action: str,
    body: Any,
    query: dict,
) -> None:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    before = snapshot(database, attempt["id"])
    event = attempt_event(method, attempt["id"], world.users[intruder], action, body, query=query)
    reply = call(event)
    assert reply.status == 404, (intruder, action, reply.body)
    assert reply.problem["title"] == "Not Found"
    assert snapshot(database, attempt["id"]) == before

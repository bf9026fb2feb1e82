"""A member's attempt history and comparisons (``GET /users/{userId}/...``)
through API Gateway v2 events: seed 000's definitions on crafted data (ties,
nulls, a single attempt, none), keyset pages, the role matrix on every route,
and the cache dropped when the member's attempt is scored in this container."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.support import User, World, build_world, http_event

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def own(database: MigratedDatabase) -> World:
    """A world of this module's own: its attempts disturb no other test's."""
    world = build_world(database.admin_url)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for key in ("a2", "a3", "empty"):
            world.scenarios[key] = conn.execute(
                "insert into scenarios (org_id, title, difficulty, visibility)"
                " values (%s, %s, 'beginner', 'org') returning id",
                [world.orgs["a"], f"Scenario {key}"],
            ).fetchone()[0]
    return world


def insert_attempt(
    database: MigratedDatabase,
    user: User,
    scenario: uuid.UUID,
    started_at: datetime,
    score: float | None,
    status: str = "completed",
    duration: int | None = 60,
    attempt_id: uuid.UUID | None = None,
) -> uuid.UUID:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        return conn.execute(
            "insert into scenario_attempts (id, org_id, clerk_user_id, scenario_id, started_at,"
            " ended_at, duration_seconds, score, status)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
            [
                attempt_id or uuid.uuid4(),
                user.org_id,
                user.user_id,
                scenario,
                started_at,
                None if status == "in_progress" else started_at + timedelta(minutes=5),
                duration,
                score,
                status,
            ],
        ).fetchone()[0]


def get(call, path: str, user: User, route: str, query: dict[str, str] | None = None, **params):
    return call(
        http_event("GET", path, user=user, query=query, route=route, path_parameters=params)
    )


def history(call, caller: User, who: str, **query: str):
    return get(
        call, f"/users/{who}/attempts", caller, "/users/{userId}/attempts", query, userId=who
    )


@pytest.fixture(scope="module")
def crafted(database: MigratedDatabase, own: World) -> dict[str, Any]:
    """trainee_a1 on scenario a: 50, 80, 80 (a tie on score: the later is best), two
    attempts at the same instant, an unscored latest, and attempts that are not
    completed (in progress, abandoned) which count for nothing but practice time."""
    t = own.users["trainee_a1"]
    s = own.scenarios["a"]
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])
    ids = {
        "first": insert_attempt(database, t, s, T0, 50),
        "tie_low": insert_attempt(database, t, s, T0 + timedelta(days=1), 80, attempt_id=low),
        "tie_high": insert_attempt(database, t, s, T0 + timedelta(days=1), 80, attempt_id=high),
        "latest": insert_attempt(database, t, s, T0 + timedelta(days=2), None),
    }
    insert_attempt(database, t, s, T0 + timedelta(days=3), None, status="in_progress")
    insert_attempt(database, t, s, T0 + timedelta(days=3), 99, status="abandoned", duration=30)
    return ids


def test_history_is_newest_first_ties_by_id_and_only_completed(call, own: World, crafted) -> None:
    trainee = own.users["trainee_a1"]
    reply = history(call, trainee, "me", scenario_id=str(own.scenarios["a"]))
    assert reply.status == 200, reply.body
    ids = [a["attempt_id"] for a in reply.body["attempts"]]
    expected = ["latest", "tie_high", "tie_low", "first"]
    assert ids == [str(crafted[k]) for k in expected]
    assert reply.body["user_id"] == trainee.user_id
    assert reply.body["next_cursor"] is None


def test_history_pages_by_keyset_without_gaps_or_repeats(call, own: World, crafted) -> None:
    trainee = own.users["trainee_a1"]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        reply = history(call, trainee, trainee.user_id, **query)
        assert reply.status == 200, reply.body
        seen += [a["attempt_id"] for a in reply.body["attempts"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    everything = history(call, trainee, "me").body["attempts"]
    assert seen == [a["attempt_id"] for a in everything]
    assert len(seen) == len(set(seen)) == 4


def test_a_cursor_it_did_not_give_is_422(call, own: World) -> None:
    reply = history(call, own.users["trainee_a1"], "me", cursor="bm90LWEtY3Vyc29y")
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "query.cursor"


def test_best_is_the_highest_score_most_recent_on_ties(call, own: World, crafted) -> None:
    trainee = own.users["trainee_a1"]
    path = "/users/{userId}/best-attempts"
    reply = get(call, "/users/me/best-attempts", trainee, path, userId="me")
    assert reply.status == 200, reply.body
    scenario = str(own.scenarios["a"])
    (best,) = [b for b in reply.body["best_attempts"] if b["scenario_id"] == scenario]
    assert best["best_attempt_id"] == str(crafted["tie_high"])
    assert best["best_score"] == 80


def comparison(call, caller: User, who: str, scenario: uuid.UUID):
    return get(
        call,
        f"/users/{who}/scenarios/{scenario}/comparison",
        caller,
        "/users/{userId}/scenarios/{scenarioId}/comparison",
        userId=who,
        scenarioId=str(scenario),
    )


def test_comparison_first_best_latest_and_statistics(call, own: World, crafted) -> None:
    trainee = own.users["trainee_a1"]
    reply = comparison(call, trainee, "me", own.scenarios["a"])
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["first_attempt_id"] == str(crafted["first"])
    assert body["best_attempt_id"] == str(crafted["tie_high"])
    assert body["latest_attempt_id"] == str(crafted["latest"])
    assert body["latest_score"] is None
    # The latest is unscored: no improvement to speak of.
    assert body["improvement_percentage"] is None
    assert body["completed_attempts"] == 4
    assert body["total_attempts"] == 6
    assert body["average_score"] == 70
    assert body["median_score"] == 80
    assert body["score_std_dev"] == pytest.approx(17.32, abs=0.01)
    assert body["total_practice_seconds"] == 4 * 60  # completed attempts only


def test_comparison_with_no_attempts_and_with_a_first_score_of_zero(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee = own.users["trainee_a2"]
    empty = comparison(call, trainee, "me", own.scenarios["empty"]).body
    assert empty["total_attempts"] == empty["completed_attempts"] == 0
    assert empty["first_attempt_id"] is None
    assert empty["best_attempt_id"] is None
    assert empty["average_score"] is None
    assert empty["improvement_percentage"] is None
    assert empty["total_practice_seconds"] == 0

    insert_attempt(database, trainee, own.scenarios["a3"], T0, 0)
    insert_attempt(database, trainee, own.scenarios["a3"], T0 + timedelta(hours=1), 40)
    zero = comparison(call, trainee, "me", own.scenarios["a3"]).body
    assert zero["first_score"] == 0
    assert zero["latest_score"] == 40
    assert zero["improvement_percentage"] is None


def test_comparison_of_an_unknown_scenario_is_404(call, own: World) -> None:
    reply = comparison(call, own.users["trainee_a1"], "me", uuid.uuid4())
    assert reply.status == 404


def improvement(call, caller: User, who: str, scenario: uuid.UUID, **query: str):
    return get(
        call,
        f"/users/{who}/scenarios/{scenario}/improvement",
        caller,
        "/users/{userId}/scenarios/{scenarioId}/improvement",
        query,
        userId=who,
        scenarioId=str(scenario),
    )


def test_improvement_numbers_deltas_averages_and_trends(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee = own.users["trainee_a3"]
    scenario = own.scenarios["a2"]
    start = datetime.now(UTC) - timedelta(days=20)
    for i, score in enumerate([60, 70, 90, 90, 60, 50]):
        insert_attempt(database, trainee, scenario, start + timedelta(days=i), score)
    reply = improvement(call, trainee, "me", scenario, days_back="30")
    assert reply.status == 200, reply.body
    points = reply.body["points"]
    assert [p["attempt_number"] for p in points] == [1, 2, 3, 4, 5, 6]
    assert [p["score_delta"] for p in points] == [None, 10, 20, 0, -30, -10]
    assert [p["moving_avg_3"] for p in points] == [60, 65, 73.33, 83.33, 80, 66.67]
    assert [p["improvement_trend"] for p in points] == [
        "stable", "improving", "improving", "improving", "declining", "declining",
    ]  # fmt: skip
    assert points[0]["percentile_rank"] == 20  # 60 ranks above the 50 only
    assert max(p["percentile_rank"] for p in points) == 80  # two 90s tie at the top
    # The window limits the rows, not the history behind them.
    window = improvement(call, trainee, "me", scenario, days_back="17").body["points"]
    assert [p["attempt_number"] for p in window] == [5, 6]


def test_a_single_attempt_is_stable_with_no_delta(call, own: World, database) -> None:
    trainee = own.users["manager_a2"]
    scenario = own.scenarios["a3"]
    insert_attempt(database, trainee, scenario, datetime.now(UTC) - timedelta(days=1), 75)
    (point,) = improvement(call, trainee, "me", scenario).body["points"]
    assert point["attempt_number"] == 1
    assert point["score_delta"] is None
    assert point["improvement_trend"] == "stable"
    assert point["percentile_rank"] == 0


def recent(call, caller: User, who: str, **query: str):
    return get(
        call,
        f"/users/{who}/recent-attempts",
        caller,
        "/users/{userId}/recent-attempts",
        query,
        userId=who,
    )


def test_recent_flags_best_latest_and_ranks(call, own: World, crafted) -> None:
    trainee = own.users["trainee_a1"]
    reply = recent(call, trainee, "me", scenario_id=str(own.scenarios["a"]), limit="3")
    assert reply.status == 200, reply.body
    rows = {r["attempt_id"]: r for r in reply.body["attempts"]}
    assert list(rows) == [str(crafted[k]) for k in ("latest", "tie_high", "tie_low")]
    latest, tie_high, tie_low = rows.values()
    assert latest["is_latest"]
    assert not latest["is_best_score"]
    assert latest["rank_by_score"] == 4  # unscored ranks after the three scores
    assert tie_high["is_best_score"]
    assert not tie_high["is_latest"]
    assert tie_high["rank_by_score"] == tie_low["rank_by_score"] == 1
    assert not tie_low["is_best_score"]


# -- who may ask about whom ------------------------------------------------------

ROUTES = ("attempts", "best", "recent", "improvement", "comparison")


def ask(call, route: str, caller: User, who: str, scenario: uuid.UUID):
    if route == "attempts":
        return history(call, caller, who)
    if route == "best":
        return get(call, f"/users/{who}/best-attempts", caller, "/users/{userId}/best-attempts",
                   userId=who)  # fmt: skip
    if route == "recent":
        return recent(call, caller, who)
    if route == "improvement":
        return improvement(call, caller, who, scenario)
    return comparison(call, caller, who, scenario)


# (caller, member asked about, expected status)
MATRIX = [
    ("trainee_a1", "trainee_a1", 200),
    ("trainee_a1", "me", 200),
    ("trainee_a1", "trainee_a2", 404),
    ("trainee_a1", "manager_a", 404),
    ("manager_a", "trainee_a1", 200),
    ("manager_a", "me", 200),
    ("manager_a", "trainee_a3", 404),
    ("manager_a2", "trainee_a1", 404),
    ("admin_a", "trainee_a3", 200),
    ("admin_a", "manager_a", 200),
    ("admin_b", "trainee_a1", 404),
    ("trainee_b1", "trainee_a1", 404),
    ("admin_a", "user_nobody", 404),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("caller", "member", "status"), MATRIX)
def test_the_role_matrix(call, own: World, crafted, route, caller, member, status) -> None:
    who = member if member in ("me", "user_nobody") else own.users[member].user_id
    reply = ask(call, route, own.users[caller], who, own.scenarios["a"])
    assert reply.status == status, reply.body
    if status == 404:
        assert reply.problem["status"] == 404


def test_a_cached_answer_is_dropped_when_the_member_is_scored_here(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee, manager = own.users["trainee_a2"], own.users["manager_a"]
    scenario = own.scenarios["a2"]
    path, route = f"/users/{trainee.user_id}/best-attempts", "/users/{userId}/best-attempts"

    def best() -> dict[str, Any]:
        reply = get(call, path, manager, route, userId=trainee.user_id)
        assert reply.status == 200, reply.body
        return {b["scenario_id"]: b["best_score"] for b in reply.body["best_attempts"]}

    assert str(scenario) not in best()
    # Written behind the container's back: the cached answer stands (5 minutes).
    insert_attempt(database, trainee, scenario, T0, 10)
    assert str(scenario) not in best()
    # Ended and scored through this container: dropped at once.
    started = call(
        http_event("POST", "/attempts", user=trainee, body={"scenario_id": str(scenario)})
    )
    attempt_id = started.body["id"]

    def submit(user: User, body: dict[str, Any]) -> None:
        reply = call(
            http_event(
                "POST",
                f"/attempts/{attempt_id}/submit",
                user=user,
                body=body,
                route="/attempts/{attemptId}/submit",
                path_parameters={"attemptId": attempt_id},
            )
        )
        assert reply.status == 200, reply.body

    submit(trainee, {})
    assert best()[str(scenario)] == 10
    submit(manager, {"score": 93})
    assert best()[str(scenario)] == 93


def test_a_cached_answer_is_not_served_to_a_caller_who_lost_the_member(
    call, own: World, database: MigratedDatabase
) -> None:
    manager, trainee = own.users["manager_a2"], own.users["trainee_a3"]
    path, route = f"/users/{trainee.user_id}/best-attempts", "/users/{userId}/best-attempts"
    assert get(call, path, manager, route, userId=trainee.user_id).status == 200
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update org_members set manager_user_id = null where user_id = %s", [trainee.user_id]
        )
    try:
        assert get(call, path, manager, route, userId=trainee.user_id).status == 404
    finally:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            conn.execute(
                "update org_members set manager_user_id = %s where user_id = %s",
                [manager.user_id, trainee.user_id],
            )

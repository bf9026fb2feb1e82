"""The scenario catalog through API Gateway v2 events: sorts and filters with
keyset pages, a scenario's content with its figures and the caller's progress,
save/rate/notes (idempotent, counters exact under 50 concurrent users), the
coaches' authoring (built-ins read-only), and the role matrix on every route."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.support import User, World, build_world, http_event

ROUTE = "/scenarios/{scenarioId}"


@pytest.fixture(scope="module")
def own(database: MigratedDatabase) -> World:
    """A world of this module's own, with a few more scenarios of org A."""
    world = build_world(database.admin_url)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for key, difficulty, category in (
            ("x", "advanced", "negotiation"),
            ("y", "beginner", "negotiation"),
            ("z", "intermediate", "discovery"),
        ):
            world.scenarios[key] = conn.execute(
                "insert into scenarios (org_id, title, difficulty, category, visibility)"
                " values (%s, %s, %s, %s, 'org') returning id",
                [world.orgs["a"], f"Scenario {key}", difficulty, category],
            ).fetchone()[0]
    return world


def on(method: str, scenario: Any, user: User, suffix: str = "", body: Any = None, **kw: Any):
    path = f"/scenarios/{scenario}{suffix}"
    return http_event(
        method,
        path,
        user=user,
        body=body,
        route=ROUTE + suffix,
        path_parameters={"scenarioId": str(scenario)},
        **kw,
    )


def catalog(call, user: User, **query: str):
    reply = call(http_event("GET", "/scenarios", user=user, query=query))
    assert reply.status == 200, reply.body
    return reply.body


def counters(database: MigratedDatabase, org: uuid.UUID, scenario: uuid.UUID) -> tuple:
    """scenario_metadata's counters beside a recount from user_scenario_progress."""
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select (select array[amount_saved_count, ratings_count, ratings_sum]"
            "          from scenario_metadata where org_id = %(o)s and scenario_id = %(s)s),"
            "       (select array[count(*) filter (where is_saved),"
            "                     count(user_rating), coalesce(sum(user_rating), 0)]::int[]"
            "          from user_scenario_progress where org_id = %(o)s and scenario_id = %(s)s)",
            {"o": org, "s": scenario},
        ).fetchone()


# -- browsing --------------------------------------------------------------------


def test_the_catalog_is_the_orgs_active_scenarios_and_built_ins(call, own: World) -> None:
    trainee = own.users["trainee_a1"]
    ids = {s["id"] for s in catalog(call, trainee, limit="100")["scenarios"]}
    assert str(own.scenarios["a"]) in ids
    assert str(own.scenarios["builtin"]) in ids
    assert str(own.scenarios["b"]) not in ids
    other = {s["id"] for s in catalog(call, own.users["trainee_b1"], limit="100")["scenarios"]}
    assert str(own.scenarios["a"]) not in other
    assert str(own.scenarios["builtin"]) in other


def test_filters_by_difficulty_category_and_saved(call, own: World) -> None:
    trainee = own.users["trainee_a2"]
    body = catalog(call, trainee, difficulty="advanced", category="negotiation", limit="100")
    assert [s["id"] for s in body["scenarios"]] == [str(own.scenarios["x"])]
    assert call(on("PUT", own.scenarios["y"], trainee, "/save")).status == 200
    saved = catalog(call, trainee, saved="true", limit="100")["scenarios"]
    assert [s["id"] for s in saved] == [str(own.scenarios["y"])]
    assert saved[0]["progress"]["is_saved"] is True


@pytest.mark.parametrize("sort", ["trending", "most_saved", "top_rated", "most_used", "newest"])
def test_every_sort_pages_by_keyset_in_its_order(call, own: World, sort: str) -> None:
    trainee = own.users["trainee_a1"]
    everything = catalog(call, trainee, sort=sort, limit="100")["scenarios"]
    seen, cursor = [], None
    for _ in range(50):
        query = {"sort": sort, "limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = catalog(call, trainee, **query)
        seen += [s["id"] for s in page["scenarios"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [s["id"] for s in everything]
    assert len(seen) == len(set(seen))


def test_a_cursor_not_of_the_lists_form_is_422(call, own: World) -> None:
    reply = call(
        http_event("GET", "/scenarios", user=own.users["trainee_a1"], query={"cursor": "abc"})
    )
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "query.cursor"


def test_trending_counts_completions_of_the_last_seven_utc_days(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee = own.users["trainee_a3"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for scenario, starts in (
            (own.scenarios["z"], [today, today - timedelta(days=6), today - timedelta(days=7)]),
            (own.scenarios["x"], [today - timedelta(days=1)]),
        ):
            for started in starts:
                conn.execute(
                    "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, status,"
                    " started_at, ended_at, score) values (%s, %s, %s, 'completed', %s, %s, 70)",
                    [trainee.org_id, trainee.user_id, scenario, started, started],
                )
    top = catalog(call, trainee, sort="trending", limit="2")["scenarios"]
    assert [s["id"] for s in top] == [str(own.scenarios["z"]), str(own.scenarios["x"])]
    assert [s["metadata"]["completions_7d"] for s in top] == [2, 1]
    assert top[0]["metadata"]["total_times_used"] == 3
    assert top[0]["progress"]["times_completed"] == 3


# -- one scenario ------------------------------------------------------------------


def test_a_scenario_with_its_figures_and_the_callers_progress(call, own: World) -> None:
    trainee = own.users["trainee_a1"]
    reply = call(on("GET", own.scenarios["builtin"], trainee))
    assert reply.status == 200, reply.body
    assert reply.body["built_in"] is True
    assert set(reply.body["metadata"]) >= {"amount_saved_count", "average_rating"}
    assert set(reply.body["progress"]) >= {"is_saved", "user_rating", "times_completed"}
    assert call(on("GET", uuid.uuid4(), trainee)).status == 404
    assert call(on("GET", own.scenarios["b"], trainee)).status == 404


# -- engagement ----------------------------------------------------------------


def test_saving_twice_counts_once_and_unsaving_is_idempotent(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee, scenario = own.users["manager_a2"], own.scenarios["x"]
    before = call(on("GET", scenario, trainee)).body["metadata"]["amount_saved_count"]
    for _ in range(2):
        reply = call(on("PUT", scenario, trainee, "/save"))
        assert reply.status == 200, reply.body
        assert reply.body["is_saved"] is True
        assert reply.body["saved_at"] is not None
        assert reply.body["amount_saved_count"] == before + 1
    for _ in range(2):
        reply = call(on("DELETE", scenario, trainee, "/save"))
        assert reply.status == 200
        assert reply.body["is_saved"] is False
        assert reply.body["amount_saved_count"] == before
    stored, recount = counters(database, own.orgs["a"], scenario)
    assert stored == recount


def test_re_rating_replaces_and_the_average_stays_exact(
    call, own: World, database: MigratedDatabase
) -> None:
    scenario = own.scenarios["y"]
    a1, a2 = own.users["trainee_a1"], own.users["trainee_a2"]
    assert call(on("PUT", scenario, a1, "/rating", {"rating": 5})).body["ratings_count"] == 1
    reply = call(on("PUT", scenario, a2, "/rating", {"rating": 2}))
    assert (reply.body["ratings_count"], reply.body["average_rating"]) == (2, 3.5)
    reply = call(on("PUT", scenario, a1, "/rating", {"rating": 3}))
    assert (reply.body["ratings_count"], reply.body["average_rating"]) == (2, 2.5)
    reply = call(on("DELETE", scenario, a2, "/rating"))
    assert (
        reply.body["ratings_count"],
        reply.body["average_rating"],
        reply.body["user_rating"],
    ) == (
        1,
        3,
        None,
    )
    assert call(on("DELETE", scenario, a2, "/rating")).body["ratings_count"] == 1
    stored, recount = counters(database, own.orgs["a"], scenario)
    assert stored == recount


@pytest.mark.parametrize("rating", [0, 6, 2.5, "4", None])
def test_a_rating_outside_1_to_5_is_422(call, own: World, rating: Any) -> None:
    reply = call(
        on("PUT", own.scenarios["y"], own.users["trainee_a1"], "/rating", {"rating": rating})
    )
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "body.rating"


def test_notes_are_private_and_length_limited(call, own: World) -> None:
    trainee, scenario = own.users["trainee_a2"], own.scenarios["z"]
    reply = call(on("PUT", scenario, trainee, "/notes", {"notes": "ask about budget"}))
    assert reply.status == 200, reply.body
    assert reply.body["user_notes"] == "ask about budget"
    assert call(on("GET", scenario, trainee)).body["progress"]["user_notes"] == "ask about budget"
    # Not the manager's to read, on the scenario or in the member's progress.
    manager = own.users["manager_a"]
    assert call(on("GET", scenario, manager)).body["progress"]["user_notes"] is None
    progress = call(
        http_event(
            "GET",
            f"/users/{trainee.user_id}/scenario-progress",
            user=manager,
            route="/users/{userId}/scenario-progress",
            path_parameters={"userId": trainee.user_id},
        )
    ).body
    assert all("user_notes" not in row for row in progress["scenarios"])
    too_long = call(on("PUT", scenario, trainee, "/notes", {"notes": "x" * 4001}))
    assert too_long.status == 422
    assert call(on("PUT", scenario, trainee, "/notes", {"notes": None})).body["user_notes"] is None


def test_engaging_with_an_unknown_foreign_or_inactive_scenario_is_404(
    call, own: World, database: MigratedDatabase
) -> None:
    trainee = own.users["trainee_a1"]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        inactive = conn.execute(
            "insert into scenarios (org_id, title, is_active) values (%s, 'old', false)"
            " returning id",
            [own.orgs["a"]],
        ).fetchone()[0]
    for scenario in (uuid.uuid4(), own.scenarios["b"], inactive):
        assert call(on("PUT", scenario, trainee, "/save")).status == 404
        assert call(on("PUT", scenario, trainee, "/rating", {"rating": 4})).status == 404
        assert call(on("DELETE", scenario, trainee, "/save")).status == 404


# -- authoring --------------------------------------------------------------------


def test_coaches_create_edit_and_deactivate_their_orgs_scenarios(
    call, own: World, database: MigratedDatabase
) -> None:
    manager, trainee = own.users["manager_a"], own.users["trainee_a1"]
    body = {"title": "Renewal call", "difficulty": "advanced", "learning_objectives": ["listen"]}
    created = call(http_event("POST", "/scenarios", user=manager, body=body))
    assert created.status == 201, created.body
    scenario = created.body["id"]
    assert created.headers["location"] == f"/scenarios/{scenario}"
    assert created.body["created_by_user_id"] == manager.user_id
    assert created.body["built_in"] is False
    with psycopg.connect(database.admin_url) as conn:
        dim = conn.execute(
            "select title from dim_scenarios where scenario_id = %s", [scenario]
        ).fetchone()
    assert dim == ("Renewal call",)

    edited = call(on("PATCH", scenario, own.users["admin_a"], body={"title": "Renewal, hard"}))
    assert edited.status == 200, edited.body
    assert edited.body["title"] == "Renewal, hard"
    assert edited.body["difficulty"] == "advanced"
    with psycopg.connect(database.admin_url) as conn:
        dim = conn.execute(
            "select title from dim_scenarios where scenario_id = %s", [scenario]
        ).fetchone()
    assert dim == ("Renewal, hard",)
    cleared = call(on("PATCH", scenario, manager, body={"title": None}))
    assert cleared.status == 422

    assert call(on("DELETE", scenario, manager)).status == 204
    assert call(on("DELETE", scenario, manager)).status == 204
    ids = {s["id"] for s in catalog(call, trainee, limit="100")["scenarios"]}
    assert scenario not in ids
    assert call(on("GET", scenario, trainee)).status == 404
    assert call(on("GET", scenario, manager)).body["is_active"] is False
    back = call(on("PATCH", scenario, manager, body={"is_active": True}))
    assert back.body["is_active"] is True


# -- who may do what ---------------------------------------------------------------

CALLERS = ("trainee_a1", "manager_a", "admin_a", "admin_b")


@pytest.mark.parametrize("caller", CALLERS)
def test_the_role_matrix(call, own: World, caller: str) -> None:
    user = own.users[caller]
    mine = own.scenarios["a"]
    same_org = user.org_id == own.orgs["a"]
    coach = caller in ("manager_a", "admin_a")
    seen = 200 if same_org else 404

    assert call(http_event("GET", "/scenarios", user=user)).status == 200
    assert call(on("GET", mine, user)).status == seen
    assert call(on("GET", own.scenarios["builtin"], user)).status == 200
    for method, suffix, body in (
        ("PUT", "/save", None),
        ("DELETE", "/save", None),
        ("PUT", "/rating", {"rating": 4}),
        ("DELETE", "/rating", None),
        ("PUT", "/notes", {"notes": "n"}),
    ):
        assert call(on(method, mine, user, suffix, body)).status == seen, (method, suffix)
        assert call(on(method, own.scenarios["builtin"], user, suffix, body)).status == 200

    created = call(http_event("POST", "/scenarios", user=user, body={"title": f"By {caller}"}))
    assert created.status == (201 if coach or caller == "admin_b" else 403), created.body
    # Editing: a trainee may not (403); another org's scenario is unknown (404);
    # a built-in is read-only for everyone (403).
    edit = call(on("PATCH", mine, user, body={"description": "d"}))
    assert edit.status == (200 if coach else 404 if not same_org else 403)
    assert call(on("PATCH", own.scenarios["builtin"], user, body={"title": "t"})).status == 403
    assert call(on("DELETE", own.scenarios["builtin"], user)).status == 403
    if not coach:
        assert call(on("DELETE", mine, user)).status == (404 if not same_org else 403)

    progress = call(
        http_event(
            "GET",
            f"/users/{own.users['trainee_a1'].user_id}/scenario-progress",
            user=user,
            route="/users/{userId}/scenario-progress",
            path_parameters={"userId": own.users["trainee_a1"].user_id},
        )
    )
    assert progress.status == (200 if same_org else 404)
    foreign_team = call(
        http_event(
            "GET",
            f"/users/{own.users['trainee_a3'].user_id}/scenario-progress",
            user=user,
            route="/users/{userId}/scenario-progress",
            path_parameters={"userId": own.users["trainee_a3"].user_id},
        )
    )
    assert foreign_team.status == (200 if caller == "admin_a" else 404)

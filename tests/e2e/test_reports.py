"""The refresh and reports functions through their handlers: API Gateway v2
events for every route and role, EventBridge events for the schedules, and
the weekly digest sent through moto's SES over HTTP and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg
import pytest

from dev.invoke import LambdaContext
from practice.reporting.digest import week_of
from tests.conftest import MigratedDatabase
from tests.e2e.conftest import Reply, call_handler
from tests.support import User, World, build_world, http_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def apps(reports_app: ModuleType, refresh_app: ModuleType) -> dict[str, ModuleType]:
    return {"reports": reports_app, "refresh": refresh_app}


@pytest.fixture(scope="module")
def place(database: MigratedDatabase, apps: dict[str, ModuleType]) -> World:
    """A world of its own with completed attempts last week and this week, refreshed."""
    world = build_world(database.admin_url)
    last_week, _ = week_of(datetime.now(UTC).date())
    last_monday = datetime(last_week.year, last_week.month, last_week.day, 10, tzinfo=UTC)
    plan = [
        ("trainee_a1", last_monday + timedelta(days=1), 90),
        ("trainee_a1", last_monday + timedelta(days=2), 80),
        ("trainee_a2", last_monday + timedelta(days=3), 60),
        ("trainee_a3", last_monday + timedelta(days=1), 70),
        ("trainee_a1", datetime.now(UTC) - timedelta(minutes=30), 75),
        ("trainee_a1", last_monday - timedelta(days=5), 50),
        ("trainee_b1", datetime.now(UTC) - timedelta(minutes=30), 99),
    ]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for name, started, score in plan:
            user = world.users[name]
            org = "a" if user.org_id == world.orgs["a"] else "b"
            attempt = conn.execute(
                "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, started_at)"
                " values (%s, %s, %s, %s) returning id",
                [user.org_id, user.user_id, world.scenarios[org], started],
            ).fetchone()[0]
            conn.execute(
                "update scenario_attempts set status = 'completed', score = %s,"
                " ended_at = started_at + interval '10 minutes', duration_seconds = 600,"
                ' kpis = \'{"talk_ms": 3000, "listen_ms": 1000}\' where id = %s',
                [score, attempt],
            )
        conn.execute(
            "update assignments set due_at = %s where id = %s",
            [last_monday + timedelta(days=2), world.assignments["a1"]],
        )
        # Every world's manager has the same address: this one's must be its own.
        conn.execute(
            "update org_members set email = %s where org_id = %s and user_id = %s",
            [_address(world), world.orgs["a"], world.users["manager_a"].user_id],
        )
    admin = world.users["admin_a"]
    event = http_event("POST", "/reports/refresh", user=admin, body={})
    reply = call_handler(apps["refresh"], event)
    assert reply.status in (200, 202), reply.body
    return world


def _address(world: World) -> str:
    return f"{world.users['manager_a'].user_id}@a.example"


def _get(apps: dict[str, ModuleType], user: User | None, path: str, **query: str) -> Reply:
    return call_handler(apps["reports"], http_event("GET", path, user=user, query=query or None))


# -- refresh ---------------------------------------------------------------------


def test_an_admin_refresh_answers_the_run_it_did(apps: dict[str, ModuleType], place: World) -> None:
    admin = place.users["admin_a"]
    reply = call_handler(
        apps["refresh"], http_event("POST", "/reports/refresh", user=admin, body={"full": True})
    )
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "succeeded"
    assert reply.body["full_rebuild"] is True
    run_id = reply.body["id"]
    assert reply.headers["location"] == f"/reports/refresh/runs/{run_id}"
    got = call_handler(
        apps["refresh"],
        http_event(
            "GET",
            f"/reports/refresh/runs/{run_id}",
            user=admin,
            route="/reports/refresh/runs/{runId}",
            path_parameters={"runId": str(run_id)},
        ),
    )
    assert (got.status, got.body["id"]) == (200, run_id)


def test_a_refresh_while_another_works_answers_202_with_the_run_it_joined(
    apps: dict[str, ModuleType], place: World, database: MigratedDatabase
) -> None:
    admin = place.users["admin_a"]
    with psycopg.connect(database.admin_url) as working:
        (run_id,) = working.execute("select id from refresh_reporting_views('schedule')").fetchone()
        reply = call_handler(
            apps["refresh"], http_event("POST", "/reports/refresh", user=admin, body={})
        )
        assert reply.status == 202, reply.body
        assert reply.body["status"] == "skipped"
        assert reply.body["joined_run_id"] == run_id
        assert reply.headers["location"] == f"/reports/refresh/runs/{run_id}"
        still = call_handler(
            apps["refresh"],
            http_event(
                "GET",
                f"/reports/refresh/runs/{run_id}",
                user=admin,
                route="/reports/refresh/runs/{runId}",
                path_parameters={"runId": str(run_id)},
            ),
        )
        assert (still.status, still.body["status"]) == (200, "running")
        working.commit()


@pytest.mark.parametrize("who", ["manager_a", "trainee_a1"])
def test_only_admins_refresh(apps: dict[str, ModuleType], place: World, who: str) -> None:
    reply = call_handler(
        apps["refresh"], http_event("POST", "/reports/refresh", user=place.users[who], body={})
    )
    assert reply.status == 403


@pytest.mark.parametrize("job", ["refresh", "rebuild"])
def test_the_schedules_run_as_the_system(apps: dict[str, ModuleType], job: str) -> None:
    # The template's rules send their Input, {"job": ...}, as the event.
    result = apps["refresh"].handler({"job": job}, LambdaContext(function_name="refresh"))
    assert result["job"] == job
    assert result["result"]["status"] in ("succeeded", "skipped")
    assert result["result"]["trigger"] == "schedule"
    assert result["result"]["full_rebuild"] is (job == "rebuild")


# -- dashboards: who sees what ---------------------------------------------------

ROUTES = {
    "/reports/org-overview": {"admin_a": 200, "manager_a": 403, "trainee_a1": 403},
    "/reports/leaderboard": {"admin_a": 200, "manager_a": 200, "trainee_a1": 403},
    "/reports/team": {"admin_a": 403, "manager_a": 200, "trainee_a1": 403},
    "/reports/assignments": {"admin_a": 200, "manager_a": 200, "trainee_a1": 403},
    "/reports/scenario-insights": {"admin_a": 200, "manager_a": 200, "trainee_a1": 403},
    "/reports/me": {"admin_a": 200, "manager_a": 200, "trainee_a1": 200},
    "/reports/recent-attempts": {"admin_a": 200, "manager_a": 200, "trainee_a1": 403},
    "/reports/digest": {"admin_a": 200, "manager_a": 200, "trainee_a1": 200},
}


@pytest.mark.parametrize(
    ("path", "who"), [(path, who) for path, whom in ROUTES.items() for who in whom]
)
def test_each_route_answers_each_role_as_its_rule_says(
    apps: dict[str, ModuleType], place: World, path: str, who: str
) -> None:
    reply = _get(apps, place.users[who], path)
    assert reply.status == ROUTES[path][who], reply.body
    if reply.status == 200 and path != "/reports/digest":
        assert "refreshed_at" in reply.body
        assert reply.body["refreshed_at"] is not None


def test_no_claims_is_401(apps: dict[str, ModuleType]) -> None:
    assert _get(apps, None, "/reports/me").status == 401


def test_the_overview_counts_the_orgs_attempts_only(
    apps: dict[str, ModuleType], place: World
) -> None:
    body = _get(apps, place.users["admin_a"], "/reports/org-overview").body
    assert body["total_attempts"] == 6
    assert body["attempts_this_week"] >= 1
    assert len(body["trend_30_days"]) == 30
    assert body["trend_30_days"][-1]["attempts"] == 1
    assert sum(d["attempts"] for d in body["heatmap_365_days"]) == 6
    assert body["top_scenarios"][0]["scenario_id"] == str(place.scenarios["a"])
    other = _get(apps, place.users["admin_b"], "/reports/org-overview").body
    assert other["total_attempts"] == 1


def test_a_manager_sees_their_team_and_an_admin_any_team_or_the_org(
    apps: dict[str, ModuleType], place: World
) -> None:
    month = (datetime.now(UTC) - timedelta(days=0)).strftime("%Y-%m")
    manager = place.users["manager_a"]
    team = _get(apps, manager, "/reports/leaderboard", month=month).body
    users = {row["user_id"] for row in team["rows"]}
    assert users <= {place.users["trainee_a1"].user_id, place.users["trainee_a2"].user_id}
    assert place.users["trainee_a3"].user_id not in users
    other_team = _get(
        apps, manager, "/reports/leaderboard", scope="team", team=place.users["manager_a2"].user_id
    )
    assert other_team.status == 403
    assert _get(apps, manager, "/reports/leaderboard", scope="org").status == 403
    admin = place.users["admin_a"]
    org = _get(apps, admin, "/reports/leaderboard", scope="org", month=month)
    assert org.status == 200
    assert all(row["rank"] >= 1 for row in org.body["rows"])
    assert place.users["trainee_b1"].user_id not in {r["user_id"] for r in org.body["rows"]}
    any_team = _get(
        apps, admin, "/reports/leaderboard", scope="team", team=place.users["manager_a2"].user_id,
        month=month,
    )  # fmt: skip
    assert any_team.status == 200
    assert _get(apps, admin, "/reports/leaderboard", month="2026-13").status == 422


def test_a_trainee_sees_only_their_own_figures(apps: dict[str, ModuleType], place: World) -> None:
    trainee = place.users["trainee_a2"]
    body = _get(apps, trainee, "/reports/me").body
    assert all(a["user_id"] == trainee.user_id for a in body["last_attempts"])
    assert len(body["last_attempts"]) == 1
    mine = _get(apps, place.users["trainee_a1"], "/reports/me").body
    assert len(mine["last_attempts"]) == 4
    assert mine["attempts_this_week"] >= 1


def test_recent_attempts_page_by_keyset_within_the_callers_reach(
    apps: dict[str, ModuleType], place: World
) -> None:
    admin, manager2 = place.users["admin_a"], place.users["manager_a2"]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = _get(apps, admin, "/reports/recent-attempts", **query).body
        seen += [item["attempt_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    team = _get(apps, manager2, "/reports/recent-attempts").body["items"]
    assert {i["user_id"] for i in team} == {place.users["trainee_a3"].user_id}
    bad = _get(apps, admin, "/reports/recent-attempts", cursor="bm90LWEtY3Vyc29y")
    assert bad.status == 422


def test_team_report_ranks_the_team_among_the_orgs(
    apps: dict[str, ModuleType], place: World
) -> None:
    body = _get(apps, place.users["manager_a"], "/reports/team").body
    assert body["members"] == 2
    assert body["teams"] == 2
    assert body["rank"] in (1, 2)
    assert body["assignments"] == 1


# -- the weekly digest ---------------------------------------------------------------


def _sent(moto_url: str) -> list[dict[str, Any]]:
    """The messages moto's SES holds: read over HTTP (``/moto-api/data.json``); when
    another service's state makes that dump fail (moto answers 500), from the
    server's backend, which lives in this process."""
    reply = httpx.get(f"{moto_url}/moto-api/data.json")
    if reply.status_code == 200:
        messages = reply.json().get("ses", {}).get("Message", [])
        return messages if isinstance(messages, list) else list(messages.values())
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import Message, ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [
        {"subject": m.subject, "body": m.body, "destinations": m.destinations, "id": m.id}
        for m in backend.sent_messages
        if isinstance(m, Message)
    ]


def _digest(apps: dict[str, ModuleType]) -> dict[str, Any]:
    event = {
        "version": "0",
        "id": "evt-digest",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/digest"],
        "region": "us-east-1",
        "account": "123456789012",
        "detail": {},
    }
    return apps["reports"].handler(
        event | {"job": "weekly-digest"}, LambdaContext(function_name="reports")
    )


def test_the_digest_goes_once_per_manager_and_week(
    apps: dict[str, ModuleType], place: World, moto_url: str
) -> None:
    address = _address(place)
    before = [m for m in _sent(moto_url) if address in json.dumps(m)]
    first = _digest(apps)["result"]
    mine = [m for m in _sent(moto_url) if address in json.dumps(m)]
    assert len(mine) - len(before) == 1
    second = _digest(apps)["result"]
    assert second["sent"] == 0
    assert second["already_sent"] >= first["sent"] >= 1
    assert [m for m in _sent(moto_url) if address in json.dumps(m)] == mine
    text = json.dumps(mine[-1])
    _, week = week_of(datetime.now(UTC).date())
    assert f"Weekly team digest, {week}: average" in text
    assert "Trainee A1" in text
    assert "<img" not in text


def test_an_opted_out_manager_gets_no_digest(
    apps: dict[str, ModuleType], place: World, database: MigratedDatabase
) -> None:
    manager = place.users["manager_a2"]
    put = call_handler(
        apps["reports"],
        http_event("PUT", "/reports/digest", user=manager, body={"opt_out": True}),
    )
    assert (put.status, put.body) == (200, {"opt_out": True})
    assert _get(apps, manager, "/reports/digest").body == {"opt_out": True}
    with psycopg.connect(database.admin_url) as conn:
        flag = conn.execute(
            "select digest_opt_out from org_members where org_id = %s and user_id = %s",
            [manager.org_id, manager.user_id],
        ).fetchone()[0]
    assert flag is True


def test_the_digest_renders_bars_and_a_text_part(place: World) -> None:
    from practice.reporting.digest import Digest, Performer, render_html, render_text

    digest = Digest(
        org_id=place.orgs["a"],
        manager="m",
        manager_name="Manager <A>",
        email="m@example.com",
        week="2026-W48",
        week_start=datetime(2026, 11, 23, tzinfo=UTC).date(),
        members=3,
        top=[Performer("Ann", 91.0, 3, 80.0)],
        bottom=[Performer("Bob", 40.0, 1, None)],
        team_avg=76.3,
        prev_team_avg=70.0,
        completion=0.5,
        prev_completion=None,
    )
    page = render_html(digest)
    assert digest.subject == "Weekly team digest, 2026-W48: average 76.3"
    assert "Manager &lt;A&gt;" in page
    assert "width:182px" in page  # Ann's bar: 91 of 100, 2 px a point
    assert "<img" not in page
    assert "<style" not in page  # inline styles only
    text = render_text(digest)
    assert "Ann: 91.0 (last week 80.0), 3 attempts" in text
    assert "Assignments due, completed: 50% (last week n/a)" in text


def test_the_preview_writes_a_managers_digest(
    place: World, database: MigratedDatabase, tmp_path: Path
) -> None:
    from dev.digest import preview

    manager = place.users["manager_a"]
    out = preview(database.admin_url, database.app_url, manager.user_id, tmp_path / "d.html")
    page = out.read_text()
    assert "Weekly team digest" in page
    assert "Trainee A1" in page
    with pytest.raises(LookupError):
        preview(database.admin_url, database.app_url, place.users["trainee_a1"].user_id, out)

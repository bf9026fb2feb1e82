"""The dashboards 0033 moved into PostgreSQL answer what the statements and the
Python they replaced answered, and read only the rows they show.

* The org overview is the document pydantic wrote from 0032's rows, byte for
  byte (``reports_org_overview_document`` renders it; the route sends it as is),
  in UTC sessions and in another time zone, for an org with facts and one
  without.
* The leaderboard (ranked in SQL now) and a member's report are the models the
  Python ranking and the text statements built, equal field by field, floats
  to the bit; and the same whatever the session's time zone (the text
  statements cut months in the session's zone).
* A member's last five attempts are five fact rows read, whether the member
  has 10 facts or 1,000; a team's leaderboard reads the team's rows, whatever
  the size of the org.

The data is crafted for the edges: equal averages (shared ranks), members
only in one of the two months, user ids whose order differs between the C
collation and a language's, names and titles with quotes and non-ASCII text,
attempts at the same instant (ties broken by id), scores whole, long and
tiny, days at the edges of the week, month, trend and heatmap windows, and a
day after today.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pydantic import TypeAdapter

from dev.postgres import APP_LOGIN, with_user
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from practice.reporting.dashboards import ReportService
from practice.reporting.models import (
    AttemptLine,
    DayCount,
    Leaderboard,
    LeaderboardPage,
    LeaderboardRow,
    MonthScore,
    MyReport,
    OrgOverview,
    OverviewPage,
    TopScenario,
    UpcomingAssignment,
)
from tests.conftest import MigratedDatabase

NOW = datetime.now(UTC)
TODAY = NOW.date()
MONTH = TODAY.replace(day=1)
PREVIOUS = (MONTH - timedelta(days=1)).replace(day=1)

# -- the statements and the shaping 0033 replaced, as they were ------------------

OVERVIEW_TOTALS = """
select o.active_users, o.total_attempts, o.avg_score, o.last_activity,
       (select count(*) from rpt_org_user u
         where u.org_id = (select practice_org())
           and u.last_day >= date_trunc('month', %(today)s::date)::date) as active_users_this_month
  from (select 1) one
  left join rpt_org_overview o on o.org_id = (select practice_org())
"""
OVERVIEW_DAYS = """
select d.day, d.attempts from rpt_org_day d
 where d.org_id = (select practice_org()) and d.day > %(today)s::date - 365 order by d.day
"""
OVERVIEW_TOP = """
select i.scenario_id, s.title, i.attempt_count as attempts, i.avg_score
  from rpt_scenario_insights i
  left join dim_scenarios s on s.scenario_id = i.scenario_id
 where i.org_id = (select practice_org())
 order by i.attempt_count desc, i.scenario_id
 limit 5
"""
LEADERBOARD = """
select l.user_id, d.name, l.month, l.avg_score, l.attempts, l.total_duration,
       l.avg_talk_percentage
  from v_leaderboard_month l
  left join dim_users d on d.org_id = l.org_id and d.user_id = l.user_id
 where l.month = any(%(months)s)
   and (%(manager)s::text is null or l.user_id in (select m.user_id from org_members m
        where m.org_id = (select practice_org()) and m.manager_user_id = %(manager)s
          and m.deleted_at is null))
"""
MY_DAYS = """
select coalesce(sum(attempts) filter (where day >= %(week_start)s), 0) as attempts_this_week,
       sum(score_sum) / nullif(sum(scored), 0) as avg_score
  from rpt_user_day
 where org_id = (select practice_org()) and user_id = (select practice_user())
"""
MY_MONTHS = """
select month, avg_score, attempts from v_leaderboard_month
 where user_id = (select practice_user()) and month >= %(since)s
 order by month
"""
MY_ATTEMPTS = """
select f.attempt_id, f.user_id, f.scenario_id, s.title, f.score, f.duration_seconds,
       f.started_at, f.ended_at
  from fact_scenario_attempts f
  left join dim_scenarios s on s.scenario_id = f.scenario_id
 where f.org_id = (select practice_org()) and f.user_id = (select practice_user())
 order by f.started_at desc, f.attempt_id desc
 limit 5
"""
UPCOMING = """
select a.id as assignment_id, a.scenario_id, s.title, a.due_at, a.required
  from assignments a
  left join dim_scenarios s on s.scenario_id = a.scenario_id
 where a.org_id = (select practice_org()) and a.assignee_user_id = (select practice_user())
   and a.completed_at is null and (a.due_at is null or a.due_at >= now())
 order by a.due_at nulls last, a.id
 limit 20
"""
REFRESHED_AT = "select reports_refreshed_at() as refreshed_at"
DAY_COUNTS = TypeAdapter(list[DayCount])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def overview_before(db: Database, principal: Principal) -> str:
    """The overview document as 0032's rows and the Python shaping made it."""
    params = {"today": TODAY}
    ((refreshed,), (totals,), days_rows, top) = [
        db.query(principal, sql, params)
        for sql in (REFRESHED_AT, OVERVIEW_TOTALS, OVERVIEW_DAYS, OVERVIEW_TOP)
    ]
    days = {row["day"]: row["attempts"] for row in days_rows}
    return OrgOverview(
        refreshed_at=refreshed["refreshed_at"],
        active_users_this_month=totals["active_users_this_month"] or 0,
        active_users=totals["active_users"] or 0,
        total_attempts=totals["total_attempts"] or 0,
        avg_score=_float(totals["avg_score"]),
        last_activity=totals["last_activity"],
        attempts_this_week=sum(n for d, n in days.items() if d > TODAY - timedelta(days=7)),
        attempts_this_month=sum(n for d, n in days.items() if d > TODAY - timedelta(days=30)),
        trend_30_days=DAY_COUNTS.validate_python(
            [
                {"day": d, "attempts": days.get(d, 0)}
                for d in (TODAY - timedelta(days=n) for n in range(29, -1, -1))
            ]
        ),
        top_scenarios=[TopScenario.model_validate(t) for t in top],
        heatmap_365_days=DAY_COUNTS.validate_python(
            [{"day": d, "attempts": n} for d, n in days.items()]
        ),
    ).model_dump_json()


def _ranks(rows: list[dict[str, Any]]) -> list[int]:
    ranks: list[int] = []
    for i, row in enumerate(rows):
        tied = i > 0 and rows[i - 1]["avg_score"] == row["avg_score"]
        ranks.append(ranks[-1] if tied else i + 1)
    return ranks


def leaderboard_before(
    db: Database, principal: Principal, scope: str, team: str | None
) -> Leaderboard:
    """The leaderboard as the text statement and the Python ranking built it."""
    months = [datetime(d.year, d.month, 1, tzinfo=UTC) for d in (MONTH, PREVIOUS)]
    (refreshed,) = db.query(principal, REFRESHED_AT)
    rows = db.query(principal, LEADERBOARD, {"months": months, "manager": team})
    order = lambda r: (-(r["avg_score"] or -1), r["user_id"])  # noqa: E731
    current = sorted((r for r in rows if r["month"].date() == MONTH), key=order)
    before = {r["user_id"]: r for r in rows if r["month"].date() == PREVIOUS}
    ordered = sorted(before.values(), key=order)
    before_ranks = {r["user_id"]: k for r, k in zip(ordered, _ranks(ordered), strict=True)}
    lines = []
    for rank, row in zip(_ranks(current), current, strict=True):
        past = before.get(row["user_id"])
        avg, past_avg = _float(row["avg_score"]), _float(past and past["avg_score"])
        lines.append(
            LeaderboardRow(
                rank=rank,
                user_id=row["user_id"],
                name=row["name"],
                avg_score=avg,
                attempts=row["attempts"],
                total_duration=row["total_duration"],
                avg_talk_percentage=row["avg_talk_percentage"],
                previous_avg_score=past_avg,
                change=None if avg is None or past_avg is None else avg - past_avg,
                previous_rank=before_ranks.get(row["user_id"]),
            )
        )
    return Leaderboard(
        refreshed_at=refreshed["refreshed_at"],
        month=MONTH.strftime("%Y-%m"),
        scope=scope,  # type: ignore[arg-type]
        team=team,
        rows=lines,
    )


def me_before(db: Database, principal: Principal) -> MyReport:
    """A member's report as the four text statements built it."""
    since = (MONTH - timedelta(days=150)).replace(day=1)
    params = {
        "week_start": TODAY - timedelta(days=6),
        "since": datetime(since.year, since.month, 1, tzinfo=UTC),
    }
    ((refreshed,), (days,), months, attempts, upcoming) = [
        db.query(principal, sql, params)
        for sql in (REFRESHED_AT, MY_DAYS, MY_MONTHS, MY_ATTEMPTS, UPCOMING)
    ]
    return MyReport(
        refreshed_at=refreshed["refreshed_at"],
        attempts_this_week=days["attempts_this_week"],
        avg_score=_float(days["avg_score"]),
        score_trend=[
            MonthScore(
                month=m["month"].strftime("%Y-%m"),
                avg_score=_float(m["avg_score"]),
                attempts=m["attempts"],
            )
            for m in months
        ],
        last_attempts=[AttemptLine.model_validate(r) for r in attempts],
        upcoming_assignments=[UpcomingAssignment.model_validate(r) for r in upcoming],
    )


# -- the place -------------------------------------------------------------------


@dataclass
class Place:
    org: uuid.UUID
    empty_org: uuid.UUID
    admin: str
    managers: list[str]
    trainees: list[str]
    tag: str


# C orders "B" before "a"; a language's collation the other way round.
TRAINEE_KEYS = ["a", "B", "c", "D", "e_only_now", "f_only_before", "g_ties"]
NAMES = ['Zoë "Q"', "Ölaf", "Ngọc Ánh", "back\\slash", None, "Tab\tName", "x"]
SCORES = [
    Decimal(90),
    Decimal("72.9"),
    Decimal("33.333333333333333333"),
    Decimal("0.0001"),
    Decimal(100),
    Decimal("66.67"),
    Decimal(0),
    Decimal("12.5"),
]
# Days from today: the edges of the week (6, 7), the month window (29, 30),
# the heatmap (364, 365), a day after today, and months back.
DAY_OFFSETS = [0, 1, 6, 7, 13, 29, 30, 31, 45, 60, 95, 200, 364, 365, 380, -1]


def _facts(conn: psycopg.Connection, org: uuid.UUID, scenarios: list[uuid.UUID], user: str,
           starts: list[datetime], seed: int) -> None:  # fmt: skip
    for k, started in enumerate(starts):
        conn.execute(
            "insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id, score,"
            " duration_seconds, talk_ms, listen_ms, started_at, ended_at)"
            " values (gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                org,
                user,
                scenarios[(seed + k) % len(scenarios)],
                None if (seed + k) % 9 == 4 else SCORES[(seed * 3 + k) % len(SCORES)],
                None if k % 7 == 5 else 60 + 37 * k,
                1000 + 333 * k,
                0 if k % 11 == 3 else 2000 + 7 * seed,
                started,
                started + timedelta(minutes=12),
            ],
        )


@pytest.fixture(scope="module")
def place(database: MigratedDatabase) -> Place:
    tag = uuid.uuid4().hex[:6]
    admin, managers = f"admin_{tag}", [f"manager_m_{tag}", f"manager_n_{tag}"]
    trainees = [f"user_{key}_{tag}" for key in TRAINEE_KEYS]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        org, empty_org = (
            conn.execute(
                "insert into orgs (clerk_org_id, name) values (%s, %s) returning id",
                [f"org_{name}_{tag}", f"Dashboards {name} {tag}"],
            ).fetchone()[0]
            for name in ("docs", "empty")
        )
        people = [(admin, "admin", None, "Admin"), (managers[0], "manager", None, "M")]
        people += [(managers[1], "manager", None, "N")]
        for k, (user, name) in enumerate(zip(trainees, NAMES, strict=True)):
            # the first four on M's team, the rest on N's
            people.append((user, "trainee", managers[0] if k < 4 else managers[1], name))
        for user, role, manager, name in people:
            conn.execute(
                "insert into org_members (org_id, user_id, role, manager_user_id, display_name,"
                " email) values (%s, %s, %s, %s, %s, %s)",
                [org, user, role, manager, name, f"{user}@docs.example"],
            )
        conn.execute(
            "insert into org_members (org_id, user_id, role) values (%s, %s, 'admin')",
            [empty_org, admin],
        )
        scenarios = [
            conn.execute(
                "insert into scenarios (org_id, title) values (%s, %s) returning id", [org, title]
            ).fetchone()[0]
            for title in ['Cold "call"', "Renewal - ünïcode", "Plain", "Six", "Five", "Seven"]
        ]
        at = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=9)
        for k, user in enumerate(trainees):
            key = TRAINEE_KEYS[k]
            starts = [at - timedelta(days=d, minutes=k) for d in DAY_OFFSETS]
            if key == "e_only_now":
                starts = [s for s in starts if s.date() >= MONTH]
            if key == "f_only_before":
                starts = [s for s in starts if PREVIOUS <= s.date() < MONTH]
            _facts(conn, org, scenarios, user, starts, seed=k)
        # Equal averages in both months, and ids C orders the other way round
        # from a language ("I" < "h"): they share a rank, listed in C order.
        for user in (f"user_h_tie_{tag}", f"user_I_tie_{tag}"):
            conn.execute(
                "insert into org_members (org_id, user_id, role) values (%s, %s, 'trainee')",
                [org, user],
            )
            for started, score in ((at - timedelta(hours=1), 50), (at - timedelta(days=35), 70)):
                conn.execute(
                    "insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id,"
                    " score, started_at, ended_at) values (gen_random_uuid(), %s, %s, %s, %s, %s,"
                    " %s)",
                    [org, user, scenarios[0], score, started, started + timedelta(minutes=1)],
                )
        same = at + timedelta(days=2, microseconds=500)  # the newest, eight at one instant
        for _ in range(8):
            _facts(conn, org, scenarios, trainees[-1], [same], seed=3)
        for k, (due, required) in enumerate(
            [(NOW + timedelta(days=3), True), (None, False), (NOW + timedelta(days=3), False),
             (NOW - timedelta(days=1), True)]
        ):  # fmt: skip
            conn.execute(
                "insert into assignments (org_id, scenario_id, assignee_user_id, due_at, required)"
                " values (%s, %s, %s, %s, %s)",
                [org, scenarios[k], trainees[0], due, required],
            )
        row = conn.execute(
            "select status, error from refresh_reporting_views('manual', 'dashboards test')"
        ).fetchone()
        assert row == ("succeeded", None), row
    return Place(org, empty_org, admin, managers, trainees, tag)


def _pool(database: MigratedDatabase, zone: str) -> Database:
    direct = with_user(database.admin_url, APP_LOGIN)
    url = make_conninfo(direct, options=f"-c TimeZone={zone}")
    pool = Database(Settings(database_url=url, db_pool_min=1, db_pool_max=1))
    pool.open()
    return pool


@pytest.fixture(scope="module", params=["UTC", "Asia/Kolkata"])
def db(request: pytest.FixtureRequest, database: MigratedDatabase) -> Iterator[Database]:
    """The functions' pool, its sessions in one time zone; straight to the
    server (a transaction pooler refuses the time zone startup parameter)."""
    pool = _pool(database, request.param)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def utc(database: MigratedDatabase) -> Iterator[Database]:
    pool = _pool(database, "UTC")
    try:
        yield pool
    finally:
        pool.close()


def _service(db: Database) -> ReportService:
    return ReportService(db, TenantCache(), Settings())


def _as(place: Place, user: str, role: Role, org: uuid.UUID | None = None) -> Principal:
    return Principal(user, org or place.org, role)


# -- the answers -----------------------------------------------------------------


def test_the_overview_is_the_document_pydantic_wrote(db: Database, place: Place) -> None:
    for org in (place.org, place.empty_org):
        admin = _as(place, place.admin, Role.ADMIN, org)
        page = _service(db).org_overview(admin)
        assert isinstance(page, OverviewPage)
        assert page.body.decode() == overview_before(db, admin)
    body = OrgOverview.model_validate_json(page.body)
    assert body.total_attempts == 0
    assert len(body.trend_30_days) == 30


def test_the_overview_holds_the_crafted_edges(utc: Database, place: Place) -> None:
    body = OrgOverview.model_validate_json(
        _service(utc).org_overview(_as(place, place.admin, Role.ADMIN)).body
    )
    days = {d.day for d in body.heatmap_365_days}
    assert TODAY + timedelta(days=1) in days  # a day after today is shown, as before
    assert TODAY - timedelta(days=364) in days
    assert TODAY - timedelta(days=365) not in days
    assert body.avg_score is not None
    assert any('"' in (t.title or "") or "ü" in (t.title or "") for t in body.top_scenarios)


@pytest.mark.parametrize("who", ["admin-org", "admin-team", "manager"])
def test_the_leaderboard_is_the_document_the_python_ranking_wrote(
    db: Database, place: Place, who: str
) -> None:
    service = _service(db)
    if who == "manager":
        caller, scope, team = _as(place, place.managers[0], Role.MANAGER), "team", None
    else:
        caller = _as(place, place.admin, Role.ADMIN)
        scope, team = ("org", None) if who == "admin-org" else ("team", place.managers[1])
    page = service.leaderboard(caller, MONTH, scope, team)
    assert isinstance(page, LeaderboardPage)
    got = Leaderboard.model_validate_json(page.body)
    assert page.body.decode() == leaderboard_before(db, caller, scope, got.team).model_dump_json()
    assert len(got.rows) >= 2
    if who == "admin-org":
        tied = [r for r in got.rows if r.user_id.startswith(("user_h_tie", "user_I_tie"))]
        assert len({r.rank for r in tied}) == len({r.previous_rank for r in tied}) == 1
        assert [r.user_id for r in tied] == sorted(r.user_id for r in tied)
        assert tied[0].user_id.startswith("user_I_tie")
        assert any(r.previous_rank is None for r in got.rows)


@pytest.mark.parametrize("member", range(len(TRAINEE_KEYS)), ids=TRAINEE_KEYS)
def test_a_members_report_is_what_the_statements_built(
    utc: Database, place: Place, member: int
) -> None:
    caller = _as(place, place.trainees[member], Role.TRAINEE)
    got = _service(utc).me(caller)
    assert got == me_before(utc, caller)
    if member == 0:
        assert len(got.upcoming_assignments) == 3
    if TRAINEE_KEYS[member] == "g_ties":
        assert len({a.started_at for a in got.last_attempts}) == 1


def test_the_months_do_not_depend_on_the_sessions_time_zone(
    utc: Database, database: MigratedDatabase, place: Place
) -> None:
    # The text statements cut a month in the session's zone: west of UTC the
    # first instant of a UTC month fell in the month before.
    west = _pool(database, "America/New_York")
    try:
        admin = _as(place, place.admin, Role.ADMIN)
        trainee = _as(place, place.trainees[0], Role.TRAINEE)
        boards = [
            Leaderboard.model_validate_json(
                _service(pool).leaderboard(admin, MONTH, "org", None).body
            )
            for pool in (west, utc)
        ]
        assert boards[0] == boards[1]
        assert boards[0].rows
        assert _service(west).me(trainee) == _service(utc).me(trainee)
    finally:
        west.close()


# -- what they read ----------------------------------------------------------------


def _own_reads(conn: psycopg.Connection, table: str) -> tuple[int, int]:
    """(sequential scans, rows fetched by scans and indexes) of ``table`` in this
    transaction so far: this backend's own counts, whatever other sessions do."""
    row = conn.execute(
        "select seq_scan, seq_tup_read + idx_tup_fetch from pg_stat_xact_user_tables"
        " where relname = %s",
        [table],
    ).fetchone()
    return row or (0, 0)


def _reads(
    conn: psycopg.Connection, table: str, principal: Principal, statement: str, params: list
) -> tuple[int, int]:
    """What ``statement`` reads of ``table`` as the functions' role in
    ``principal``'s context, once its plan is cached on the connection (a pooled
    connection plans each statement once)."""
    measured = (0, 0)
    for _ in range(2):  # the first transaction plans, the second is measured
        with conn.transaction():
            conn.execute(f"set local role {APP_LOGIN}")
            conn.execute(
                "select practice_enter(%s, %s, %s, '10s')",
                [principal.org_id, principal.user_id, principal.role.value],
            )
            before = _own_reads(conn, table)
            conn.execute(statement, params).fetchall()
            after = _own_reads(conn, table)
            measured = (after[0] - before[0], after[1] - before[1])
    return measured


def _bulk_member(conn: psycopg.Connection, org: uuid.UUID, user: str, facts: int) -> None:
    conn.execute(
        "insert into org_members (org_id, user_id, role) values (%s, %s, 'trainee')", [org, user]
    )
    conn.execute(
        "insert into fact_scenario_attempts (attempt_id, org_id, user_id, score, started_at,"
        " ended_at) select gen_random_uuid(), %s, %s, i %% 100, now() - i * interval '1 hour',"
        " now() - i * interval '1 hour' + interval '5 minutes' from generate_series(1, %s) i",
        [org, user, facts],
    )


def test_a_members_last_attempts_are_read_newest_first_whatever_their_history(
    database: MigratedDatabase, place: Place
) -> None:
    reads = {}
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for facts in (10, 1000):
            user = f"history_{facts}_{place.tag}"
            _bulk_member(conn, place.org, user, facts)
            conn.execute("analyze fact_scenario_attempts")
            since = datetime(PREVIOUS.year, PREVIOUS.month, 1, tzinfo=UTC)
            reads[facts] = _reads(
                conn,
                "fact_scenario_attempts",
                _as(place, user, Role.TRAINEE),
                "select * from reports_me(%s, %s)",
                [TODAY - timedelta(days=6), since],
            )
    assert reads[10] == reads[1000] == (0, 5), reads


def test_a_teams_leaderboard_reads_the_teams_rows_whatever_the_orgs_size(
    database: MigratedDatabase,
) -> None:
    reads = {}
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for size in (5, 300):
            tag = uuid.uuid4().hex[:6]
            org = conn.execute(
                "insert into orgs (clerk_org_id, name) values (%s, 'sizes') returning id",
                [f"org_sizes_{tag}"],
            ).fetchone()[0]
            manager = f"manager_{tag}"
            conn.execute(
                "insert into org_members (org_id, user_id, role) values (%s, %s, 'manager')",
                [org, manager],
            )
            for k in range(size):
                conn.execute(
                    "insert into org_members (org_id, user_id, role, manager_user_id)"
                    " values (%s, %s, 'trainee', %s)",
                    [org, f"member_{k}_{tag}", manager if k < 3 else None],
                )
            conn.execute(
                "insert into fact_scenario_attempts (attempt_id, org_id, user_id, score,"
                " started_at, ended_at) select gen_random_uuid(), %s, 'member_' || (i %% %s) ||"
                " '_' || %s, i %% 100, date_trunc('month', now()) + interval '1 hour',"
                " date_trunc('month', now()) + interval '2 hours' from generate_series(1, %s) i",
                [org, size, tag, size * 4],
            )
            assert conn.execute("select status from refresh_reporting_views()").fetchone() == (
                "succeeded",
            )
            conn.execute("analyze rpt_leaderboard_month")
            months = [datetime(d.year, d.month, 1, tzinfo=UTC) for d in (MONTH, PREVIOUS)]
            reads[size] = _reads(
                conn,
                "rpt_leaderboard_month",
                Principal(manager, org, Role.MANAGER),
                "select reports_leaderboard_document(%s, %s, %s, '', 'team')",
                [*months, manager],
            )
    assert reads[5] == reads[300], reads
    assert reads[5][0] == 0, reads
    assert 3 <= reads[5][1] <= 6, reads  # three members, this month and the last

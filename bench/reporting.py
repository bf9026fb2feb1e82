"""Reporting figures over N seeded facts (default 1,000,000, 20 orgs), each
beside its baseline measured in the same run:

* full rebuild (``refresh_reporting_views(full => true)``), from empty
  summaries and over current ones, beside a plain ``REFRESH MATERIALIZED VIEW``
  of the seed's three view definitions over the same facts;
* incremental refresh of 1,000 new facts spread over the 20 orgs, and of
  nothing changed, beside the same plain REFRESH (what a refresh cost before);
* each dashboard route through the reports handler (cache cleared, so every
  call reads the database), p50, beside a primary-key select of one fact on a
  raw connection and through the function's own pool.

Run: ``python -m bench reporting [N]``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable

import psycopg

from bench.common import bench_database, p50_p99, print_table, timed, use_function_environment
from dev.invoke import LambdaContext

ORGS = 20
USERS = 50  # trainees per org, all on one manager's team
SCENARIOS = 40  # per org
DAYS = 400

# The seed's three definitions, verbatim but for the UTC month and the talk
# ratio's division by zero (as 0005 made them).
SEED_VIEWS = {
    "bench_mv_leaderboard_month": """
        select org_id, user_id, date_trunc('month', started_at, 'UTC') as month,
               avg(score) as avg_score, count(*) as attempts,
               sum(duration_seconds) as total_duration,
               avg(talk_ms::float / nullif(talk_ms::bigint + listen_ms, 0) * 100)
                   as avg_talk_percentage
          from fact_scenario_attempts where score is not null
         group by org_id, user_id, date_trunc('month', started_at, 'UTC')""",
    "bench_mv_org_overview": """
        select org_id, count(distinct user_id) as active_users, count(*) as total_attempts,
               avg(score) as avg_score, max(ended_at) as last_activity,
               count(*) filter (where ended_at >= now() - interval '7 days') as attempts_this_week,
               count(*) filter (where ended_at >= now() - interval '30 days') as attempts_this_month
          from fact_scenario_attempts where ended_at is not null group by org_id""",
    "bench_mv_scenario_insights": """
        select org_id, scenario_id, count(*) as attempt_count, avg(score) as avg_score,
               stddev(score) as score_stddev, avg(duration_seconds) as avg_duration,
               percentile_cont(0.5) within group (order by score) as median_score,
               max(ended_at) as last_attempted
          from fact_scenario_attempts where score is not null and scenario_id is not null
         group by org_id, scenario_id""",
}

# Fact i belongs to org i % ORGS, to member (i / ORGS) % USERS of that org and to
# a scenario that cycles through all SCENARIOS (31 is prime to 40, and the
# i / 1000 shift pairs members with every scenario over the run), so each org
# spreads its facts over all its members and scenarios; a block of 1,000 new
# facts touches every org, most members and every scenario.
FACTS = """
insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id, score,
    duration_seconds, talk_ms, listen_ms, started_at, ended_at)
select gen_random_uuid(), o.id,
       'bench_user_' || o.n || '_' || ((i / %(orgs)s) %% %(users)s),
       s.scenario_id,
       case when i %% 17 = 0 then null else round((random() * 100)::numeric, 1) end,
       60 + (i %% 900), 1000 + (i %% 50000), 1000 + ((i * 7) %% 50000),
       st.at, st.at + interval '10 minutes'
  from generate_series(%(first)s::bigint, %(last)s::bigint) as i
  join (select id, row_number() over (order by clerk_org_id) - 1 as n from orgs
         where clerk_org_id like 'org_bench_%%') o on o.n = i %% %(orgs)s
  cross join lateral (
      select now() - ((i * 7919) %% (%(days)s * 1440)) * interval '1 minute' as at) st
  cross join lateral (
      select ('00000000-0000-4000-8000-'
              || lpad((o.n * 100 + (i / %(orgs)s * 31 + i / 1000) %% %(scenarios)s)::text,
                      12, '0'))::uuid as scenario_id) s
"""


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def _seed(conn: psycopg.Connection, facts: int) -> None:
    for n in range(ORGS):
        org = conn.execute(
            "insert into orgs (clerk_org_id, name) values (%s, %s) returning id",
            [f"org_bench_{n:02d}", f"Bench {n}"],
        ).fetchone()[0]
        people = [(f"bench_admin_{n}", "admin", None), (f"bench_manager_{n}", "manager", None)]
        people += [(f"bench_user_{n}_{u}", "trainee", f"bench_manager_{n}") for u in range(USERS)]
        # The facts name these scenarios (completion counters reference them).
        conn.execute(
            "insert into scenarios (id, org_id, title)"
            " select ('00000000-0000-4000-8000-' || lpad((%s * 100 + s)::text, 12, '0'))::uuid,"
            " %s, 'Bench scenario ' || s from generate_series(0, %s - 1) s",
            [n, org, SCENARIOS],
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into org_members (org_id, user_id, role, manager_user_id, display_name,"
                " email) values (%s, %s, %s, %s, %s, %s)",
                [(org, u, r, m, u, f"{u}@bench.example") for u, r, m in people],
            )
    batch = 200_000
    for first in range(0, facts, batch):
        conn.execute(
            FACTS,
            {
                "first": first,
                "last": min(first + batch, facts) - 1,
                "users": USERS,
                "orgs": ORGS,
                "days": DAYS,
                "scenarios": SCENARIOS,
            },
        )
    conn.execute("analyze fact_scenario_attempts")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench reporting")
    parser.add_argument("facts", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--dashboards-only", action="store_true", help="one full rebuild, then the routes"
    )
    args = parser.parse_args(argv)

    with bench_database("practice_bench_reporting") as db:
        conn = psycopg.connect(db.admin_url, autocommit=True)
        began = time.perf_counter()
        _seed(conn, args.facts)
        print(f"seeded {args.facts:,} facts in {time.perf_counter() - began:.1f} s", flush=True)
        if args.dashboards_only:
            conn.execute("select refresh_reporting_views(full => true)")
        else:
            _refresh_figures(conn, args.facts)
        _dashboard_figures(db.app_url, conn, args.calls)
        conn.close()


def _refresh_figures(conn: psycopg.Connection, facts: int) -> None:

    def refresh(full: bool = False) -> tuple:
        row = conn.execute(
            "select status, error, changes, rows_written from"
            " refresh_reporting_views('manual', 'bench', full => %s)",
            [full],
        ).fetchone()
        assert row[0] == "succeeded", row
        return row

    # The seed's plain materialized views over the same facts.
    for name, definition in SEED_VIEWS.items():
        conn.execute(f"create materialized view {name} as {definition}")

    def plain_refresh() -> None:
        for name in SEED_VIEWS:
            conn.execute(f"refresh materialized view {name}")

    rpt = [
        "rpt_user_day",
        "rpt_org_day",
        "rpt_org_user",
        "rpt_org_overview",
        "rpt_leaderboard_month",
        "rpt_scenario_insights",
    ]

    plain = _median_ms(plain_refresh, 3)
    empty_times = []
    for _ in range(3):
        for table in rpt:
            conn.execute(f"delete from {table}")
        conn.execute("vacuum " + ", ".join(rpt))
        empty_times.append(_median_ms(lambda: refresh(full=True), 1))
    empty = statistics.median(empty_times)
    current = _median_ms(lambda: refresh(full=True), 3)
    plain_again = _median_ms(plain_refresh, 3)
    baseline = min(plain, plain_again)

    # The full rebuilds consumed the seeding's million log rows; autovacuum
    # clears what they leave before the next fold would read past it.
    conn.execute("vacuum rpt_changes")
    # 1,000 new facts over the 20 orgs, folded in.
    increments = []
    next_first = facts
    for _ in range(5):
        conn.execute(
            FACTS,
            {
                "first": next_first,
                "last": next_first + 999,
                "users": USERS,
                "orgs": ORGS,
                "days": 30,
                "scenarios": SCENARIOS,
            },
        )
        next_first += 1000
        increments.append(_median_ms(refresh, 1))
    incremental = statistics.median(increments)
    unchanged_bloated = _median_ms(refresh, 20)
    conn.execute("vacuum rpt_changes")  # what autovacuum does after a large log was consumed
    unchanged = _median_ms(refresh, 20)
    rows = [
        (
            "full rebuild, summaries empty",
            f"{empty:,.0f} ms",
            f"{baseline:,.0f} ms plain REFRESH",
            f"{empty / baseline:.2f}x",
        ),
        (
            "full rebuild, summaries current",
            f"{current:,.0f} ms",
            f"{baseline:,.0f} ms plain REFRESH",
            f"{current / baseline:.2f}x",
        ),
        (
            "incremental, 1,000 new facts / 20 orgs",
            f"{incremental:,.1f} ms",
            f"{baseline:,.0f} ms plain REFRESH",
            f"{incremental / baseline:.4f}x",
        ),
        (
            "incremental, nothing changed, log not yet vacuumed",
            f"{unchanged_bloated:,.2f} ms",
            f"{baseline:,.0f} ms plain REFRESH",
            f"{unchanged_bloated / baseline:.5f}x",
        ),
        (
            "incremental, nothing changed",
            f"{unchanged:,.2f} ms",
            f"{baseline:,.0f} ms plain REFRESH",
            f"{unchanged / baseline:.5f}x",
        ),
    ]
    print_table(f"refresh over {facts:,} facts", rows)


def _dashboard_figures(app_url: str, conn: psycopg.Connection, calls: int) -> None:
    # Dashboards through the handler, cache cleared before each call.
    use_function_environment(app_url)
    from tests.support import User, http_event

    app = importlib.import_module("functions.reports.app")
    org = conn.execute("select id from orgs where clerk_org_id = 'org_bench_00'").fetchone()[0]
    admin = User("bench_admin_0", "org_bench_00", "admin", org)
    manager = User("bench_manager_0", "org_bench_00", "manager", org)
    trainee = User("bench_user_0_1", "org_bench_00", "trainee", org, "bench_manager_0")
    routes = [
        ("/reports/org-overview", admin, None),
        ("/reports/leaderboard", manager, None),
        ("/reports/leaderboard", admin, {"scope": "org"}),
        ("/reports/team", manager, None),
        ("/reports/assignments", manager, None),
        ("/reports/scenario-insights", admin, None),
        ("/reports/me", trainee, None),
        ("/reports/recent-attempts", admin, {"limit": "25"}),
    ]
    attempt = conn.execute(
        "select attempt_id from fact_scenario_attempts where org_id = %s limit 1", [org]
    ).fetchone()[0]
    raw = psycopg.connect(app_url, autocommit=True)
    pk = "select * from fact_scenario_attempts where attempt_id = %s"
    from practice.core.identity import Principal, Role

    principal = Principal(admin.user_id, org, Role.ADMIN)
    floor_raw = p50_p99(timed(calls, lambda _i: raw.execute(pk, [attempt]).fetchone()))[0]
    floor_pool = p50_p99(timed(calls, lambda _i: app.db.query(principal, pk, [attempt])))[0]
    rows = []
    for path, user, query in routes:
        event = http_event("GET", path, user=user, query=query)

        def call(_i: int, event: dict = event) -> None:
            app.reports.cache.clear()
            answer = app.handler(event, LambdaContext(function_name="reports"))
            assert answer["statusCode"] == 200, answer

        call(0)
        p50, p99 = p50_p99(timed(calls, call))
        label = f"{path} ({user.role}{', ' + str(query) if query else ''})"
        rows.append(
            (
                label,
                f"p50 {p50:.2f} ms, p99 {p99:.2f}",
                f"PK select {floor_raw:.2f} ms raw / {floor_pool:.2f} ms pool",
                f"{p50 / floor_raw:.1f}x / {p50 / floor_pool:.1f}x",
            )
        )
    print_table("dashboards through the handler (no cache)", rows)
    app.db.close()
    raw.close()

"""The incremental reporting refresh (sql/migrations/0026, 0030): what it folds
in equals the seed's definitions over the facts (numbers to the digit, medians
to the bit) and a full recomputation, row for row; two runs at once do not both
work; readers never wait for a refresh."""

from __future__ import annotations

import math
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from dev.postgres import throwaway_database, with_user
from tests.conftest import MigratedDatabase

# The seed's own definitions, read straight from the facts (this week/month:
# attempts started on the last 7 / 30 UTC days, as the summaries define them).
EXPECTED = {
    "mv_leaderboard_month": """
        select org_id, user_id, date_trunc('month', started_at, 'UTC') as month,
               avg(score) as avg_score, count(*) as attempts,
               sum(duration_seconds) as total_duration,
               avg(talk_ms::float / nullif(talk_ms::bigint + listen_ms, 0) * 100)
                   as avg_talk_percentage
          from fact_scenario_attempts
         where score is not null and org_id = any(%(orgs)s)
         group by org_id, user_id, date_trunc('month', started_at, 'UTC')
         order by 1, 2, 3""",
    "mv_org_overview": """
        select org_id, count(distinct user_id) as active_users, count(*) as total_attempts,
               avg(score) as avg_score, max(ended_at) as last_activity,
               count(*) filter (where date_key >= (now() at time zone 'UTC')::date - 6)
                   as attempts_this_week,
               count(*) filter (where date_key >= (now() at time zone 'UTC')::date - 29)
                   as attempts_this_month
          from fact_scenario_attempts
         where ended_at is not null and org_id = any(%(orgs)s)
         group by org_id
         order by 1""",
    "mv_scenario_insights": """
        select org_id, scenario_id, count(*) as attempt_count, avg(score) as avg_score,
               stddev(score) as score_stddev, avg(duration_seconds) as avg_duration,
               percentile_cont(0.5) within group (order by score) as median_score,
               max(ended_at) as last_attempted
          from fact_scenario_attempts
         where score is not null and scenario_id is not null and org_id = any(%(orgs)s)
         group by org_id, scenario_id
         order by 1, 2""",
}
KEYS = {"mv_leaderboard_month": 3, "mv_org_overview": 1, "mv_scenario_insights": 2}
SUMMARIES = {
    "rpt_user_day": "org_id, user_id, day",
    "rpt_org_day": "org_id, day",
    "rpt_org_user": "org_id, user_id",
    "rpt_org_overview": "org_id",
    "rpt_leaderboard_month": "org_id, user_id, month",
    "rpt_scenario_insights": "org_id, scenario_id",
}


Rows = tuple[list[str], list[tuple]]  # column names, rows


def _rows(conn: psycopg.Connection, sql: str, orgs: list[uuid.UUID]) -> Rows:
    cursor = conn.execute(sql, {"orgs": orgs})
    return [c.name for c in cursor.description], cursor.fetchall()


# The one figure compared with a tolerance: the seed's avg() of float8 talk
# ratios depends on the order the rows are summed, which no other computation
# can reproduce (the summaries sum them as numeric, see 0030).
FLOAT_AVERAGES = {"avg_talk_percentage"}


def _same(found: Any, expected: Any, column: str, digits: bool) -> bool:
    if column in FLOAT_AVERAGES and found is not None and expected is not None:
        return math.isclose(found, expected, rel_tol=1e-9)
    if digits and isinstance(found, Decimal) and isinstance(expected, Decimal):
        return str(found) == str(expected)  # the same digits, scale included
    return found == expected  # floats (medians) bit for bit


def _assert_rows_equal(name: str, found: Rows, expected: Rows, digits: bool = False) -> None:
    (columns, found_rows), (_, expected_rows) = found, expected
    assert len(found_rows) == len(expected_rows), (
        f"{name}: {len(found_rows)} rows, expected {len(expected_rows)}"
    )
    for got, want in zip(found_rows, expected_rows, strict=True):
        assert all(_same(a, b, c, digits) for a, b, c in zip(got, want, columns, strict=True)), (
            name,
            got,
            want,
        )


def _refresh(conn: psycopg.Connection, full: bool = False) -> tuple:
    return conn.execute(
        "select status, error, changes, rows_written, joined_run_id"
        " from refresh_reporting_views('manual', 'test', full => %s)",
        [full],
    ).fetchone()


class Facts:
    """Random writes of facts across orgs, users, months and scenarios."""

    def __init__(
        self,
        conn: psycopg.Connection,
        orgs: list[uuid.UUID],
        rnd: random.Random,
        score_steps: int = 1000,
    ) -> None:
        self.conn, self.orgs, self.rnd = conn, orgs, rnd
        self.score_steps = score_steps  # scores 0.0 .. score_steps / 10: few steps, many ties
        self.users = [f"user_{i}" for i in range(6)]
        # Real scenarios (completions are counted per scenario, which must exist),
        # owned by this test's first org so no other test's org sees them.
        self.scenarios: list[uuid.UUID | None] = [
            conn.execute(
                "insert into scenarios (org_id, title) values (%s, %s) returning id",
                [orgs[0], f"reporting {i}"],
            ).fetchone()[0]
            for i in range(4)
        ]
        self.scenarios.append(None)
        self.ids: list[uuid.UUID] = []
        self.now = datetime.now(UTC)

    def _score(self) -> Decimal | None:
        return (
            None
            if self.rnd.random() < 0.15
            else Decimal(self.rnd.randint(0, self.score_steps)) / 10
        )

    def _started(self) -> datetime:
        # Mostly recent (the week and month windows), some months back.
        days = self.rnd.choice([0, 1, 3, 6, 7, 8, 20, 29, 30, 31, 45, 70, 100])
        return self.now - timedelta(days=days, minutes=self.rnd.randint(0, 1439))

    def _ended(self, started: datetime) -> datetime | None:
        if self.rnd.random() < 0.1:
            return None
        return started + timedelta(seconds=self.rnd.randint(1, 900))

    def insert(self) -> None:
        started = self._started()
        attempt = uuid.uuid4()
        self.conn.execute(
            "insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id, score,"
            " duration_seconds, talk_ms, listen_ms, started_at, ended_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                attempt,
                self.rnd.choice(self.orgs),
                self.rnd.choice(self.users),
                self.rnd.choice(self.scenarios),
                self._score(),
                self.rnd.choice([None, self.rnd.randint(10, 900)]),
                self.rnd.choice([None, 0, self.rnd.randint(1, 60000)]),
                self.rnd.choice([None, 0, self.rnd.randint(1, 60000)]),
                started,
                self._ended(started),
            ],
        )
        self.ids.append(attempt)

    def update(self) -> None:
        attempt = self.rnd.choice(self.ids)
        change = self.rnd.choice(["score", "rescore", "started", "scenario", "ended", "user"])
        if change in ("score", "rescore"):  # a late score, or a new one
            self.conn.execute(
                "update fact_scenario_attempts set score = %s where attempt_id = %s",
                [self._score(), attempt],
            )
        elif change == "started":
            started = self._started()
            self.conn.execute(
                "update fact_scenario_attempts set started_at = %s, ended_at = %s"
                " where attempt_id = %s",
                [started, self._ended(started), attempt],
            )
        elif change == "scenario":
            self.conn.execute(
                "update fact_scenario_attempts set scenario_id = %s where attempt_id = %s",
                [self.rnd.choice(self.scenarios), attempt],
            )
        elif change == "ended":
            self.conn.execute(
                "update fact_scenario_attempts set ended_at = case when ended_at is null"
                " then started_at + interval '5 minutes' end, duration_seconds = %s"
                " where attempt_id = %s",
                [self.rnd.randint(10, 900), attempt],
            )
        else:
            self.conn.execute(
                "update fact_scenario_attempts set user_id = %s where attempt_id = %s",
                [self.rnd.choice(self.users), attempt],
            )

    def delete(self) -> None:
        attempt = self.ids.pop(self.rnd.randrange(len(self.ids)))
        self.conn.execute("delete from fact_scenario_attempts where attempt_id = %s", [attempt])

    def step(self) -> None:
        roll = self.rnd.random()
        if not self.ids or roll < 0.5:
            self.insert()
        elif roll < 0.85:
            self.update()
        else:
            self.delete()


def _new_orgs(conn: psycopg.Connection, count: int) -> list[uuid.UUID]:
    return [
        conn.execute(
            "insert into orgs (clerk_org_id, name) values (%s, 'reporting') returning id",
            [f"org_rpt_{uuid.uuid4().hex[:10]}"],
        ).fetchone()[0]
        for _ in range(count)
    ]


def _snapshot(conn: psycopg.Connection, orgs: list[uuid.UUID]) -> dict[str, Rows]:
    return {
        table: _rows(
            conn, f"select * from {table} where org_id = any(%(orgs)s) order by {keys}", orgs
        )
        for table, keys in SUMMARIES.items()
    }


OPERATIONS = 400
SEEDS = range(1, 9)  # even seeds draw from 21 scores: ties at the median on every slice


@pytest.mark.parametrize("seed", SEEDS)
def test_the_incremental_refresh_equals_a_full_recomputation(
    database: MigratedDatabase, seed: int
) -> None:
    rnd = random.Random(seed)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        orgs = _new_orgs(conn, 3)
        facts = Facts(conn, orgs, rnd, score_steps=20 if seed % 2 == 0 else 1000)
        for _ in range(OPERATIONS):
            # Several writes in one transaction now and then (a batch of completions).
            if rnd.random() < 0.1:
                with conn.transaction():
                    for _ in range(rnd.randint(2, 8)):
                        facts.step()
            else:
                facts.step()
            if rnd.random() < 0.05:
                assert _refresh(conn)[0] == "succeeded"
        status, error, *_ = _refresh(conn)
        assert (status, error) == ("succeeded", None)

        for view, sql in EXPECTED.items():
            found = _rows(
                conn,
                f"select * from {view} where org_id = any(%(orgs)s)"
                f" order by {', '.join(str(i + 1) for i in range(KEYS[view]))}",
                orgs,
            )
            _assert_rows_equal(view, found, _rows(conn, sql, orgs), digits=True)

        incremental = _snapshot(conn, orgs)
        assert _refresh(conn, full=True)[0] == "succeeded"
        rebuilt = _snapshot(conn, orgs)
        for table in SUMMARIES:
            _assert_rows_equal(table, incremental[table], rebuilt[table])


def test_nothing_changed_writes_nothing_and_a_rolled_back_write_logs_nothing(
    database: MigratedDatabase,
) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        _refresh(conn)
        assert _refresh(conn)[2:4] == (0, 0)
        (org,) = _new_orgs(conn, 1)
        facts = Facts(conn, [org], random.Random(9))

        def write_then_fail() -> None:
            with conn.transaction():
                facts.insert()
                conn.execute("select 1 / 0")

        with pytest.raises(psycopg.errors.DivisionByZero):
            write_then_fail()
        assert _refresh(conn)[2] == 0
        facts.insert()
        status, _error, changes, written, _joined = _refresh(conn)
        assert (status, changes) == ("succeeded", 1)
        assert written > 0


def test_a_second_run_skips_and_names_the_working_one(database: MigratedDatabase) -> None:
    with (
        psycopg.connect(database.admin_url) as first,
        psycopg.connect(database.admin_url, autocommit=True) as second,
    ):
        working = first.execute(
            "select id, status from refresh_reporting_views('schedule')"
        ).fetchone()
        assert working[1] == "succeeded"  # done, but its lock is held until it commits
        status, _error, _changes, _written, joined = _refresh(second)
        assert (status, joined) == ("skipped", working[0])
        assert second.execute("select refresh_run_working(%s)", [working[0]]).fetchone()[0]
        first.commit()
        assert not second.execute("select refresh_run_working(%s)", [working[0]]).fetchone()[0]
        assert _refresh(second)[0] == "succeeded"


def test_two_runs_started_together_one_works_one_skips(database: MigratedDatabase) -> None:
    started, both_ran = threading.Barrier(2), threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        with psycopg.connect(database.admin_url) as conn:
            started.wait()
            outcomes.append(_refresh(conn)[0])
            both_ran.wait()  # the working run holds its lock until it commits, as a long run would
            conn.commit()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["skipped", "succeeded"]


FOLD_TABLES = [
    "fact_scenario_attempts",
    "rpt_user_day",
    "rpt_org_day",
    "rpt_org_user",
    "rpt_org_overview",
    "rpt_leaderboard_month",
    "rpt_scenario_insights",
]


def _table_reads(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """(sequential scans, rows read by scans and indexes) per table, so far."""
    conn.execute("select pg_stat_force_next_flush()")  # this backend's counts, flushed when idle
    conn.execute("select pg_stat_clear_snapshot()")
    rows = conn.execute(
        "select t.relname, t.seq_scan, t.seq_tup_read + coalesce(sum(i.idx_tup_read), 0)"
        "  from pg_stat_user_tables t left join pg_stat_user_indexes i on i.relid = t.relid"
        " where t.relname = any(%s) group by t.relname, t.seq_scan, t.seq_tup_read",
        [FOLD_TABLES],
    ).fetchall()
    return {name: (scans, read) for name, scans, read in rows}


def _fold_reads(conn: psycopg.Connection, per_slice: int) -> dict[str, tuple[int, int]]:
    """What folding 20 new facts reads, in an org whose 4 members x 2 scenarios
    x 2 months already hold ``per_slice`` facts each."""
    (org,) = _new_orgs(conn, 1)
    scenarios = [
        conn.execute(
            "insert into scenarios (org_id, title) values (%s, 'scaling') returning id", [org]
        ).fetchone()[0]
        for _ in range(2)
    ]
    insert = """
        insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id, score,
            duration_seconds, talk_ms, listen_ms, started_at, ended_at)
        select gen_random_uuid(), %(org)s, 'member_' || (i %% 4),
               (%(scenarios)s::uuid[])[1 + i %% 2],
               (i * 37 %% 1000) / 10.0, 60 + i %% 600, 1000 + i %% 5000, 2000,
               date_trunc('month', now()) - (i %% 2) * interval '20 days' + interval '1 hour',
               date_trunc('month', now()) - (i %% 2) * interval '20 days' + interval '2 hours'
          from generate_series(%(first)s::int, %(last)s::int) i"""
    conn.execute(insert, {"org": org, "scenarios": scenarios, "first": 1, "last": 16 * per_slice})
    assert _refresh(conn)[0] == "succeeded"
    conn.execute("analyze fact_scenario_attempts")
    conn.execute(insert, {"org": org, "scenarios": scenarios, "first": 10**6, "last": 10**6 + 19})
    before = _table_reads(conn)
    status, _error, changes, *_ = _refresh(conn)
    after = _table_reads(conn)
    assert (status, changes) == ("succeeded", 20)
    return {t: (after[t][0] - before[t][0], after[t][1] - before[t][1]) for t in FOLD_TABLES}


def test_a_fold_reads_by_key_what_it_changes_whatever_the_size_of_the_slices(
    pg_server: str,
) -> None:
    # 0026 recomputed every touched slice from the facts, so a fold's cost grew
    # with the slices' size; the fold adds the changes in, reaching each stored
    # row by its key and the facts only to move a median's anchor a few rows.
    # In a database of its own: the counts are per database, and another
    # session's backend reports its reads when it goes idle or exits, at a time
    # of its own choosing, into any measurement running then.
    with (
        throwaway_database(pg_server, "practice_fold_reads") as isolated,
        psycopg.connect(isolated.admin_url, autocommit=True) as conn,
    ):
        small = _fold_reads(conn, per_slice=5)
        large = _fold_reads(conn, per_slice=500)
    for table in FOLD_TABLES:
        assert small[table][0] == large[table][0] == 0, (table, small, large)
        assert large[table][1] <= small[table][1] + 40, (table, small, large)


def test_readers_are_not_blocked_during_a_refresh(database: MigratedDatabase) -> None:
    with (
        psycopg.connect(database.admin_url, autocommit=True) as setup,
        psycopg.connect(database.admin_url) as refresher,
        psycopg.connect(database.admin_url) as reader,
    ):
        orgs = _new_orgs(setup, 1)
        facts = Facts(setup, orgs, random.Random(7))
        for _ in range(20):
            facts.insert()
        _refresh(setup)
        for _ in range(20):
            facts.step()
        # Mid-refresh: the rows it rewrote are locked until it commits.
        assert _refresh(refresher)[3] > 0
        reader.execute("set lock_timeout = '50ms'")
        for view in EXPECTED:
            reader.execute(f"select * from {view} where org_id = any(%s)", [orgs]).fetchall()
        refresher.commit()


def test_the_bi_role_reads_the_warehouse_and_nothing_else(database: MigratedDatabase) -> None:
    login = "practice_bi_test"
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [login]).fetchone()
        if not exists:
            conn.execute(f"create role {login} login")
        conn.execute(f"grant practice_reporting to {login}")
    bi_url = with_user(database.admin_url, login)
    with psycopg.connect(bi_url, autocommit=True) as bi:
        for readable in [
            "fact_scenario_attempts",
            "fact_kpi_events",
            "dim_users",
            "dim_scenarios",
            "dim_time",
            "mv_leaderboard_month",
            "mv_org_overview",
            "mv_scenario_insights",
            *SUMMARIES,
        ]:
            bi.execute(f"select * from {readable} limit 1").fetchall()
        for hidden in [
            "select * from scenario_attempts limit 1",
            "select email from org_members limit 1",
            "select * from webhook_events limit 1",
            "select * from rpt_changes limit 1",
            "insert into dim_time (date_key, year, quarter, month, week, day_of_week,"
            " day_of_month, day_of_year, is_weekend)"
            " values ('2030-01-01', 2030, 1, 1, 1, 2, 1, 1, false)",
            "delete from rpt_org_overview",
            "update fact_scenario_attempts set score = 0",
            "select refresh_reporting_views()",
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(hidden)


def test_an_org_deleted_leaves_no_figures_and_the_next_refresh_works(
    database: MigratedDatabase,
) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        gone, kept = _new_orgs(conn, 2)
        facts = Facts(conn, [gone, kept], random.Random(11))
        for _ in range(30):
            facts.insert()
        assert _refresh(conn)[0] == "succeeded"
        for _ in range(5):
            facts.insert()  # logged, not yet folded, when the org goes
        conn.execute("delete from orgs where id = %s", [gone])
        status, error, *_ = _refresh(conn)
        assert (status, error) == ("succeeded", None)
        assert _figures(conn, gone) == {}
        assert _refresh(conn, full=True)[0] == "succeeded"
        assert _figures(conn, gone) == {}


def _figures(conn: psycopg.Connection, org: uuid.UUID) -> dict[str, list]:
    """The summary tables that hold rows of ``org``, with those rows."""
    return {table: rows for table, (_, rows) in _snapshot(conn, [org]).items() if rows}

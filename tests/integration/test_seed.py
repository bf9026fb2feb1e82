"""dev/seed.py: the demo data it loads, the derived rows the database's triggers
write for a COPY (compared with a recomputation from the attempts), re-runs,
determinism and bounded memory.

Every load goes into a database of its own, cloned from a migrated template:
the session's shared database holds other tests' orgs and users."""

from __future__ import annotations

import statistics
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest

from dev import seed
from dev.postgres import throwaway_database
from dev.stack import demo_members

NOW = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
ATTEMPTS = 2_000


@pytest.fixture(scope="module")
def fresh_database(pg_server: str) -> Iterator[Callable[[], str]]:
    """A factory of empty migrated databases (copies of one migrated template,
    CREATE DATABASE … TEMPLATE being a file copy), all dropped at the end."""
    with ExitStack() as stack:
        template = stack.enter_context(throwaway_database(pg_server, "practice_seed_tpl"))

        def copy() -> str:
            db = throwaway_database(pg_server, "practice_seed", template=template.name)
            return stack.enter_context(db).admin_url

        yield copy


@pytest.fixture(scope="module")
def bulk(fresh_database) -> tuple[str, seed.SeedSummary]:
    """2,000 attempts streamed with COPY, triggers on."""
    url = fresh_database()
    return url, seed.load_demo_data(url, ATTEMPTS, now=NOW, progress=False)


def rows(url: str, query: str, params: object = None) -> list[tuple]:
    """All rows of ``query`` on ``url``."""
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def value(url: str, query: str, params: object = None) -> object:
    """The single value of ``query`` on ``url``."""
    return rows(url, query, params)[0][0]


# ---------------------------------------------------------------------------
# What the demo data holds
# ---------------------------------------------------------------------------


def test_the_requested_attempts_with_every_status(bulk) -> None:
    url, summary = bulk
    assert value(url, "select count(*) from scenario_attempts") == ATTEMPTS
    assert summary.rows["scenario_attempts"] == ATTEMPTS
    by_status = dict(rows(url, "select status::text, count(*) from scenario_attempts group by 1"))
    assert set(by_status) == {"completed", "abandoned", "failed", "in_progress"}
    assert by_status == summary.statuses
    assert by_status["completed"] > 0.8 * ATTEMPTS
    # Calls in progress are recent; finished calls lie in the last six months.
    assert value(
        url,
        "select bool_and(started_at > %s - interval '2 hours') from scenario_attempts"
        " where status = 'in_progress'",
        [NOW],
    )
    span = rows(url, "select min(started_at), max(started_at) from scenario_attempts")[0]
    assert NOW - timedelta(days=183) < span[0]
    assert span[1] < NOW
    activity = summary.rows["attempt_activity"]
    assert value(url, "select count(*) from attempt_activity") == activity > 0
    assert value(url, "select count(*) from chat_sessions where scenario_progress is not null") > 0


def test_orgs_teams_scenarios_and_assignments(bulk) -> None:
    url, _ = bulk
    assert value(url, "select count(*) from orgs") == len(seed.DEMO_ORGS)
    per_org = rows(
        url,
        """select o.clerk_org_id,
                  count(*) filter (where m.role = 'admin'),
                  count(*) filter (where m.role = 'manager'),
                  count(*) filter (where m.role = 'trainee'),
                  count(*) filter (where m.role = 'trainee' and m.manager_user_id is null),
                  count(*) filter (where m.email is null or m.display_name is null)
             from orgs o join org_members m on m.org_id = o.id group by 1""",
    )
    for _, admins, managers, trainees, unmanaged, anonymous in per_org:
        assert 1 <= admins <= 2
        assert managers >= 1
        assert trainees >= seed.MIN_TRAINEES_PER_ORG
        assert (unmanaged, anonymous) == (0, 0)
    assert value(url, "select count(*) from scenarios where org_id is null") == len(
        seed.BUILTIN_SCENARIOS
    )
    assert value(url, "select count(distinct org_id) from scenarios where org_id is not null") == 3
    # Some assignments are done, some overdue, some still due; most are required.
    done, overdue, pending, required, total = rows(
        url,
        """select count(*) filter (where completed_at is not null),
                  count(*) filter (where completed_at is null and due_at < %(now)s),
                  count(*) filter (where completed_at is null and due_at >= %(now)s),
                  count(*) filter (where required), count(*)
             from assignments""",
        {"now": NOW},
    )[0]
    assert min(done, overdue, pending) > 0
    assert total / 2 < required < total
    assert value(url, "select count(*) from scenario_attempts where assignment_id is not null")
    assert value(url, "select count(*) from user_scenario_progress where is_saved") > 0
    assert value(url, "select count(*) from user_scenario_progress where user_rating > 0") > 0


def test_the_demo_identities_have_their_roles_and_manager(bulk) -> None:
    url, _ = bulk
    members = {
        user: (role, manager)
        for user, role, manager in rows(
            url,
            """select m.user_id, m.role::text, m.manager_user_id
                 from org_members m join orgs o on o.id = m.org_id
                where o.clerk_org_id = %s""",
            [seed.DEMO_CLERK_ORG_ID],
        )
    }
    assert members[seed.DEMO_ADMIN] == ("admin", None)
    assert members[seed.DEMO_MANAGER] == ("manager", seed.DEMO_ADMIN)
    assert members[seed.DEMO_TRAINEE] == ("trainee", seed.DEMO_MANAGER)
    # The attempts sample events and docs name.
    states = dict(
        rows(
            url,
            "select id, status::text from scenario_attempts where id = any(%s)",
            [[seed.DEMO_ACTIVE_ATTEMPT_ID, seed.DEMO_COMPLETED_ATTEMPT_ID]],
        )
    )
    assert states == {
        seed.DEMO_ACTIVE_ATTEMPT_ID: "in_progress",
        seed.DEMO_COMPLETED_ATTEMPT_ID: "completed",
    }
    # What `dev up` prints tokens for: exactly these three.
    picked = [(org, user, role) for org, user, role, _ in demo_members(url)]
    assert picked == [
        (seed.DEMO_CLERK_ORG_ID, seed.DEMO_ADMIN, "admin"),
        (seed.DEMO_CLERK_ORG_ID, seed.DEMO_MANAGER, "manager"),
        (seed.DEMO_CLERK_ORG_ID, seed.DEMO_TRAINEE, "trainee"),
    ]


def test_scores_improve_with_practice(bulk) -> None:
    url, _ = bulk
    histories = rows(
        url,
        """select array_agg(score::float order by started_at) from scenario_attempts
            where score is not null group by org_id, clerk_user_id
           having count(*) >= 10""",
    )
    assert len(histories) >= 20
    gains = [statistics.fmean(h[-3:]) - statistics.fmean(h[:3]) for (h,) in histories]
    assert statistics.fmean(gains) > 8
    assert sum(g > 0 for g in gains) > 0.75 * len(gains)
    assert value(url, "select bool_and(score between 0 and 100) from scenario_attempts")


# ---------------------------------------------------------------------------
# The bulk path's derived rows
# ---------------------------------------------------------------------------


def test_the_same_seed_and_clock_give_the_same_rows(bulk, fresh_database) -> None:
    # Two loads into two databases: identical attempts, ids included.
    again = fresh_database()
    seed.load_demo_data(again, ATTEMPTS, now=NOW, progress=False)
    query = "select md5(string_agg(a::text, '|' order by a.id)) from scenario_attempts a"
    assert value(bulk[0], query) == value(again, query)
    for table in ("org_members", "assignments", "chat_sessions", "attempt_activity"):
        count = f"select count(*) from {table}"
        assert value(bulk[0], count) == value(again, count), table


def test_a_seed_must_be_a_number(fresh_database) -> None:
    # random.Random accepts any object: a module passed by mistake would make
    # the data depend on its repr (the checkout's path).
    with pytest.raises(TypeError, match="seed must be an int"):
        seed.load_demo_data(fresh_database(), 10, seed=seed, progress=False)  # type: ignore[arg-type]


def _half_up(numerator: int, denominator: int, places: int = 0) -> Decimal:
    exponent = Decimal(1).scaleb(-places)
    return (Decimal(numerator) / Decimal(denominator)).quantize(exponent, ROUND_HALF_UP)


def assert_derived_rows_match_the_attempts(url: str) -> None:
    """Recompute every derived row from scenario_attempts and the app-written
    columns, independently of the seeder's SQL, and compare."""
    attempts = rows(
        url,
        """select org_id, scenario_id, count(*),
                  count(*) filter (where status = 'completed'),
                  coalesce(sum(duration_seconds) filter (where status = 'completed'), 0),
                  count(duration_seconds) filter (where status = 'completed')
             from scenario_attempts group by 1, 2""",
    )
    engagement = {
        (org, scenario): (saved, rated, total)
        for org, scenario, saved, rated, total in rows(
            url,
            """select org_id, scenario_id, count(*) filter (where is_saved), count(user_rating),
                      coalesce(sum(user_rating), 0)
                 from user_scenario_progress group by 1, 2""",
        )
    }
    expected = {}
    for org, scenario, started, used, seconds, samples in attempts:
        expected[org, scenario] = {
            "total_attempts": started,
            "total_times_used": used,
            "completion_rate": float(_half_up(100 * used, started, 2)),
            "time_spent_total_seconds": seconds,
            "time_spent_samples": samples,
            "average_time_spent": int(_half_up(seconds, samples)) if samples else None,
        }
    for key, (saved, rated, total) in engagement.items():
        if saved or rated:
            expected.setdefault(key, {"total_attempts": 0, "completion_rate": None})
            expected[key] |= {"amount_saved_count": saved, "ratings_count": rated}
            expected[key] |= {
                "ratings_sum": total,
                "average_rating": total / rated if rated else None,
            }
    with psycopg.connect(url) as conn:
        conn.row_factory = psycopg.rows.dict_row
        actual = {
            (r["org_id"], r["scenario_id"]): r
            for r in conn.execute("select * from scenario_metadata")
        }
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        for column, figure in want.items():
            if isinstance(figure, float):
                assert got[column] == pytest.approx(figure, rel=1e-6), (key, column)
            else:
                assert got[column] == figure, (key, column)

    mismatched = {
        "user_scenario_progress": """
            select count(*) from user_scenario_progress p
              full join (select org_id, clerk_user_id as user_id, scenario_id, count(*) as n,
                                count(*) filter (where status = 'completed') as c,
                                max(started_at) as last_start,
                                max(ended_at) filter (where status = 'completed') as last_end
                           from scenario_attempts group by 1, 2, 3) a
                using (org_id, user_id, scenario_id)
             where p.times_attempted is distinct from coalesce(a.n, 0)
                or p.times_completed is distinct from coalesce(a.c, 0)
                or p.last_attempt_at is distinct from a.last_start
                or p.last_completed_at is distinct from a.last_end""",
        "fact_scenario_attempts": """
            select count(*) from fact_scenario_attempts f
              full join (select * from scenario_attempts where status = 'completed') a
                on a.id = f.attempt_id
             where f.attempt_id is null or a.id is null
                or (f.org_id, f.user_id, f.scenario_id, f.started_at, f.ended_at, f.date_key)
                   is distinct from (a.org_id, a.clerk_user_id, a.scenario_id, a.started_at,
                                     a.ended_at, (a.started_at at time zone 'UTC')::date)
                or (f.score, f.duration_seconds, f.talk_ms, f.listen_ms)
                   is distinct from (a.score, a.duration_seconds, (a.kpis ->> 'talk_ms')::int,
                                     (a.kpis ->> 'listen_ms')::int)""",
        "fact_kpi_events": """
            select abs((select count(*) from fact_kpi_events)
                       - (select coalesce(sum(jsonb_array_length(kpis -> 'events')), 0)
                            from scenario_attempts where status = 'completed'))""",
        "assignments": """
            select count(*) from assignments s
              left join lateral (select a.ended_at from scenario_attempts a
                                  where a.assignment_id = s.id and a.status = 'completed'
                                  order by a.started_at limit 1) first on true
             where s.completed_at is distinct from first.ended_at""",
        "dim_users": """
            select count(*) from dim_users d full join org_members m using (org_id, user_id)
             where (d.name, d.email, d.role, d.manager_user_id, d.created_at) is distinct from
                   (m.display_name, m.email, m.role, m.manager_user_id, m.created_at)""",
        "dim_scenarios": """
            select count(*) from dim_scenarios d full join scenarios s on s.id = d.scenario_id
             where (d.org_id, d.title, d.difficulty, d.category, d.created_at) is distinct from
                   (s.org_id, s.title, s.difficulty::text, s.category, s.created_at)""",
    }
    for table, query in mismatched.items():
        assert value(url, query) == 0, table
    assert value(url, "select count(*) from fact_kpi_events") > 0


def test_derived_rows_match_a_recomputation_from_the_attempts(bulk) -> None:
    assert_derived_rows_match_the_attempts(bulk[0])


def test_the_reporting_views_are_refreshed(bulk) -> None:
    url, summary = bulk
    assert summary.refresh == "succeeded"
    assert value(url, "select sum(total_attempts) from mv_org_overview") == value(
        url, "select count(*) from fact_scenario_attempts"
    )


# ---------------------------------------------------------------------------
# Re-runs, refusals, the command line
# ---------------------------------------------------------------------------


def test_a_second_load_adds_a_cohort_counted_into_the_same_derived_rows(fresh_database) -> None:
    url = fresh_database()
    first = seed.load_demo_data(url, 600, now=NOW, progress=False)
    second = seed.load_demo_data(url, 400, now=NOW + timedelta(days=1), progress=False)
    assert (first.cohort, first.rows["orgs"]) == (0, 3)
    assert second.cohort > 0
    assert (second.rows["orgs"], second.rows["scenarios"]) == (0, 0)
    assert value(url, "select count(*) from scenario_attempts") == 1_000
    assert value(url, "select count(*) from orgs") == 3
    assert value(url, "select count(distinct user_id) from org_members") == value(
        url, "select count(*) from org_members"
    )
    assert_derived_rows_match_the_attempts(url)


def test_partial_demo_data_is_refused(fresh_database) -> None:
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into orgs (clerk_org_id, name) values ('org_demo_globex', 'Globex')")
    with pytest.raises(seed.SeedError, match="partial demo data"):
        seed.load_demo_data(url, 100, progress=False)
    assert value(url, "select count(*) from org_members") == 0


def test_progress_goes_to_stderr(fresh_database, capsys) -> None:
    seed.load_demo_data(fresh_database(), 3_000, now=NOW)
    err = capsys.readouterr().err
    assert "3,000/3,000 100.0%" in err
    assert "rows/s" in err


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------


def test_memory_does_not_grow_with_the_number_of_attempts(fresh_database) -> None:
    peaks = {}
    for attempts in (5_000, 20_000):
        url = fresh_database()
        tracemalloc.start()
        try:
            seed.load_demo_data(url, attempts, now=NOW, progress=False)
            peaks[attempts] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # Four times the attempts: the same peak (a list of rows would make it 4x).
    assert peaks[20_000] < 1.5 * peaks[5_000] + 512 * 1024, peaks
    assert peaks[20_000] < 8 * 1024 * 1024, peaks

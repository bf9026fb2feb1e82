"""Row-level security, exercised as the Lambda's login role (a member of the
application role, without BYPASSRLS), over every tenant table in the catalog: the
role matrix of what each caller may select, insert, update and delete, and the
pooled connection that must carry no caller's context into the next use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dev.postgres import APP_LOGIN
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.support import World, build_world

TENANT_TABLES_SQL = """
select c.relname, c.relrowsecurity, c.relforcerowsecurity
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
  and (exists (select 1 from pg_attribute a
               where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
       or c.relname = 'orgs')
order by c.relname
"""


def _tenant_tables(admin_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(admin_url, row_factory=dict_row) as conn:
        return conn.execute(TENANT_TABLES_SQL).fetchall()


def _org_column(table: str) -> str:
    return "id" if table == "orgs" else "org_id"


@pytest.fixture(scope="module")
def populated(database: MigratedDatabase, world: World) -> World:
    """At least one row of org B in every tenant table (attempts completed so the
    triggers fill the derived tables too)."""
    b, trainee = world.orgs["b"], world.users["trainee_b1"].user_id
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        attempt = conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id) "
            "values (%s, %s, %s) returning id",
            [b, trainee, world.scenarios["b"]],
        ).fetchone()[0]
        conn.execute(
            "insert into assignments (org_id, scenario_id, assignee_user_id, due_at)"
            " values (%s, %s, %s, now() + interval '3 days')",
            [b, world.scenarios["b"], trainee],
        )
        conn.execute(
            "insert into attempt_activity (org_id, attempt_id, owner_user_id, user_id, event_type)"
            " values (%s, %s, %s, %s, 'call_started')",
            [b, attempt, trainee, trainee],
        )
        conn.execute(
            "update scenario_attempts set status = 'completed', score = 80, ended_at = now(),"
            " duration_seconds = 60 where id = %s",
            [attempt],
        )
        conn.execute(
            "insert into fact_kpi_events (attempt_id, org_id, user_id, scenario_id, event_type)"
            " values (%s, %s, %s, %s, 'filler_word')",
            [attempt, b, trainee, world.scenarios["b"]],
        )
        conn.execute(
            "insert into chat_sessions (org_id, user_id, title, scenario_progress, scenario_id)"
            " values (%s, %s, 'chat', %s, 'research')",
            [b, trainee, Jsonb({"currentStep": 0})],
        )
        conn.execute(
            "update user_scenario_progress set is_saved = true, user_rating = 4"
            " where org_id = %s and user_id = %s",
            [b, trainee],
        )
        conn.execute(
            "insert into webhook_events (source, event_id, event_type, org_id, payload)"
            " values ('clerk', %s, 'user.updated', %s, '{}')",
            [f"msg_{uuid.uuid4().hex}", b],
        )
        conn.execute(
            "insert into exports (org_id, requested_by, kind, status) "
            "values (%s, %s, 'attempts', 'pending')",
            [b, trainee],
        )
    return world


@pytest.fixture
def app_conn(database: MigratedDatabase) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.app_url, row_factory=dict_row) as conn:
        yield conn


def _set_context(conn: psycopg.Connection, org: uuid.UUID, user: str, role: str) -> None:
    conn.execute(
        "select set_config('app.org_id', %s, true), set_config('app.user_id', %s, true),"
        " set_config('app.role', %s, true)",
        [str(org), user, role],
    )


def test_the_application_role_cannot_bypass_rls(database: MigratedDatabase) -> None:
    with psycopg.connect(database.app_url) as conn:
        row = conn.execute(
            "select r.rolbypassrls, r.rolsuper, pg_has_role(current_user, 'practice_app', 'member')"
            " from pg_roles r where r.rolname = current_user"
        ).fetchone()
    assert row == (False, False, True)


def test_every_tenant_table_has_rls_enabled_and_forced(database: MigratedDatabase) -> None:
    tables = _tenant_tables(database.admin_url)
    assert len(tables) >= 15
    unprotected = [
        t["relname"] for t in tables if not (t["relrowsecurity"] and t["relforcerowsecurity"])
    ]
    assert unprotected == []


def test_no_context_means_no_rows(
    database: MigratedDatabase, populated: World, app_conn: psycopg.Connection
) -> None:
    for table in (t["relname"] for t in _tenant_tables(database.admin_url)):
        with app_conn.transaction():
            try:
                count = app_conn.execute(
                    sql.SQL("select count(*) as n from {}").format(sql.Identifier(table))
                ).fetchone()["n"]
            except psycopg.errors.InsufficientPrivilege:
                continue
            assert count == 0, f"{table}: {count} rows visible without a context"


@pytest.fixture
def one_connection_db(database: MigratedDatabase) -> Iterator[Database]:
    """The container's pool shrunk to one connection, so every use shares it."""
    settings = Settings(
        database_url=database.app_url, db_pool_min=1, db_pool_max=1, db_statement_timeout_ms=4321
    )
    db = Database(settings)
    db.open()
    yield db
    db.close()


_LEFT_BEHIND = """
select pg_backend_pid() as pid,
       coalesce(current_setting('app.org_id', true), '') as org_id,
       coalesce(current_setting('app.user_id', true), '') as user_id,
       coalesce(current_setting('app.role', true), '') as role,
       current_setting('statement_timeout') as statement_timeout,
       (select reset_val from pg_settings where name = 'statement_timeout') as session_default
"""


def test_a_pooled_connection_holds_no_context_right_after_a_request(
    one_connection_db: Database, populated: World
) -> None:
    """Read straight after a request with a principal: no context-free request in
    between overwrites a leaked context (as it would hide ``set_config(..., false)``)."""
    trainee = populated.users["trainee_b1"]
    principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
    during = one_connection_db.query(principal, _LEFT_BEHIND)[0]
    assert (during["org_id"], during["role"], during["statement_timeout"]) == (
        str(trainee.org_id),
        "trainee",
        "4321ms",
    )
    with one_connection_db.pool.connection() as conn:
        after = conn.execute(_LEFT_BEHIND).fetchone()
    assert after["pid"] == during["pid"], "not the connection the request used"
    assert (after["org_id"], after["user_id"], after["role"]) == ("", "", "")
    assert after["statement_timeout"] == after["session_default"]


def test_the_next_caller_sees_none_of_the_previous_callers_rows(
    database: MigratedDatabase, one_connection_db: Database, populated: World
) -> None:
    """Org B's admin, then on the same connection org A's admin through the pipeline,
    and anyone using the pooled connection directly (as the health probe does)."""
    db = one_connection_db
    admin_b, admin_a = populated.users["admin_b"], populated.users["admin_a"]
    org_b = populated.orgs["b"]
    tables = [t["relname"] for t in _tenant_tables(database.admin_url)]
    counts = sql.SQL(" union all ").join(
        sql.SQL("select {} as t, count(*) as n from {} where {} = %(org)s").format(
            sql.Literal(t), sql.Identifier(t), sql.Identifier(_org_column(t))
        )
        for t in tables
    )
    pid = db.query(None, "select pg_backend_pid() as pid")[0]["pid"]
    before = db.query(Principal(admin_b.user_id, org_b, Role.ADMIN), counts, {"org": org_b})
    assert sum(r["n"] for r in before) > 0, "org B's admin sees none of org B's rows"

    as_org_a = db.query(
        Principal(admin_a.user_id, admin_a.org_id, Role.ADMIN), counts, {"org": org_b}
    )
    assert {r["t"]: r["n"] for r in as_org_a if r["n"]} == {}
    # Org B's admin again, then a direct use of the connection with no context.
    db.query(Principal(admin_b.user_id, org_b, Role.ADMIN), "select 1")
    with db.pool.connection() as conn:
        assert conn.execute("select pg_backend_pid() as pid").fetchone()["pid"] == pid
        direct = conn.execute(counts, {"org": org_b}).fetchall()
    assert {r["t"]: r["n"] for r in direct if r["n"]} == {}


def test_each_role_sees_exactly_its_rows(database: MigratedDatabase, populated: World) -> None:
    users = populated.users
    org_a = populated.orgs["a"]
    owners = ["trainee_a1", "trainee_a2", "trainee_a3", "manager_a", "admin_a"]
    ids: dict[str, uuid.UUID] = {}
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for name in owners:
            ids[name] = conn.execute(
                "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
                " values (%s, %s, %s) returning id",
                [org_a, users[name].user_id, populated.scenarios["a"]],
            ).fetchone()[0]
    expected = {
        "trainee_a1": {"trainee_a1"},
        "manager_a": {"manager_a", "trainee_a1", "trainee_a2"},
        "manager_a2": {"trainee_a3"},
        "admin_a": set(owners),
    }
    db = Database(Settings(database_url=database.app_url))
    db.open()
    try:
        for viewer, visible in expected.items():
            user = users[viewer]
            principal = Principal(user.user_id, org_a, Role(user.role))
            rows = db.query(
                principal,
                "select id from scenario_attempts where id = any(%s)",
                [list(ids.values())],
            )
            assert {r["id"] for r in rows} == {ids[n] for n in visible}, viewer
    finally:
        db.close()


# -- the role matrix -----------------------------------------------------------
#
# One row of each tenant table belonging to trainee A1 of org A (or to org A),
# and what each caller may do with it. Outcomes:
#   yes       seen; written (one row affected)
#   hidden    RLS hides the row: nothing seen, nothing written
#   refused   RLS refuses the new row (WITH CHECK, 42501)
#   no-grant  the app role holds no such privilege at all (42501)
# A 42501 counts only as the one written here: a missing GRANT where a policy
# was meant to decide is a failure, and so is a policy where no grant was meant.
ACTORS = ("trainee", "manager", "manager2", "admin", "other_org")
ACTOR_USERS = {
    "trainee": "trainee_a1",  # the owner of the rows
    "manager": "manager_a",  # their manager
    "manager2": "manager_a2",  # manager of another team of the same org
    "admin": "admin_a",
    "other_org": "admin_b",  # the strongest caller of another org
}
EXPECTED_TEXT = """
# table                 op      trainee   manager   manager2  admin     other_org
orgs                    select  yes       yes       yes       yes       hidden
orgs                    insert  refused   refused   refused   refused   refused
orgs                    update  hidden    hidden    hidden    hidden    hidden
orgs                    delete  hidden    hidden    hidden    hidden    hidden
org_members             select  yes       yes       hidden    yes       hidden
org_members             insert  refused   refused   refused   refused   refused
org_members             update  hidden    hidden    hidden    yes       hidden
org_members             delete  hidden    hidden    hidden    hidden    hidden
dim_users               select  yes       yes       hidden    yes       hidden
dim_users               insert  no-grant  no-grant  no-grant  no-grant  no-grant
dim_users               update  no-grant  no-grant  no-grant  no-grant  no-grant
dim_users               delete  no-grant  no-grant  no-grant  no-grant  no-grant
scenarios               select  yes       yes       yes       yes       hidden
scenarios               insert  refused   yes       yes       yes       refused
scenarios               update  hidden    yes       yes       yes       hidden
scenarios               delete  no-grant  no-grant  no-grant  no-grant  no-grant
dim_scenarios           select  yes       yes       yes       yes       hidden
dim_scenarios           insert  no-grant  no-grant  no-grant  no-grant  no-grant
dim_scenarios           update  no-grant  no-grant  no-grant  no-grant  no-grant
dim_scenarios           delete  no-grant  no-grant  no-grant  no-grant  no-grant
scenario_metadata       select  yes       yes       yes       yes       hidden
scenario_metadata       insert  no-grant  no-grant  no-grant  no-grant  no-grant
scenario_metadata       update  no-grant  no-grant  no-grant  no-grant  no-grant
scenario_metadata       delete  no-grant  no-grant  no-grant  no-grant  no-grant
assignments             select  yes       yes       hidden    yes       hidden
assignments             insert  refused   yes       refused   yes       refused
assignments             update  hidden    yes       hidden    yes       hidden
assignments             delete  hidden    yes       hidden    yes       hidden
scenario_attempts       select  yes       yes       hidden    yes       hidden
scenario_attempts       insert  yes       refused   refused   refused   refused
scenario_attempts       update  yes       yes       hidden    yes       hidden
scenario_attempts       delete  no-grant  no-grant  no-grant  no-grant  no-grant
attempt_activity        select  yes       yes       hidden    yes       hidden
attempt_activity        insert  yes       refused   refused   refused   refused
attempt_activity        update  no-grant  no-grant  no-grant  no-grant  no-grant
attempt_activity        delete  no-grant  no-grant  no-grant  no-grant  no-grant
chat_sessions           select  yes       yes       hidden    yes       hidden
chat_sessions           insert  yes       refused   refused   refused   refused
chat_sessions           update  yes       hidden    hidden    hidden    hidden
chat_sessions           delete  yes       hidden    hidden    yes       hidden
user_scenario_progress  select  yes       yes       hidden    yes       hidden
user_scenario_progress  insert  yes       refused   refused   refused   refused
user_scenario_progress  update  yes       hidden    hidden    hidden    hidden
user_scenario_progress  delete  no-grant  no-grant  no-grant  no-grant  no-grant
fact_scenario_attempts  select  yes       yes       hidden    yes       hidden
fact_scenario_attempts  insert  no-grant  no-grant  no-grant  no-grant  no-grant
fact_scenario_attempts  update  no-grant  no-grant  no-grant  no-grant  no-grant
fact_scenario_attempts  delete  no-grant  no-grant  no-grant  no-grant  no-grant
fact_kpi_events         select  yes       yes       hidden    yes       hidden
fact_kpi_events         insert  no-grant  no-grant  no-grant  no-grant  no-grant
fact_kpi_events         update  no-grant  no-grant  no-grant  no-grant  no-grant
fact_kpi_events         delete  no-grant  no-grant  no-grant  no-grant  no-grant
webhook_events          select  hidden    hidden    hidden    yes       hidden
webhook_events          insert  refused   refused   refused   refused   refused
webhook_events          update  hidden    hidden    hidden    hidden    hidden
webhook_events          delete  no-grant  no-grant  no-grant  no-grant  no-grant
exports                 select  yes       hidden    hidden    yes       hidden
exports                 insert  yes       refused   refused   refused   refused
exports                 update  hidden    hidden    hidden    hidden    hidden
exports                 delete  no-grant  no-grant  no-grant  no-grant  no-grant
dedupe_records          select  yes       hidden    hidden    hidden    hidden
dedupe_records          insert  yes       refused   refused   refused   refused
dedupe_records          update  no-grant  no-grant  no-grant  no-grant  no-grant
dedupe_records          delete  yes       hidden    hidden    hidden    hidden
scenario_completions_daily  select  yes   yes       yes       yes       hidden
scenario_completions_daily  insert  no-grant  no-grant  no-grant  no-grant  no-grant
scenario_completions_daily  update  no-grant  no-grant  no-grant  no-grant  no-grant
scenario_completions_daily  delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_changes             select  hidden    hidden    hidden    hidden    hidden
rpt_changes             insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_changes             update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_changes             delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_user_day            select  yes       yes       hidden    yes       hidden
rpt_user_day            insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_user_day            update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_user_day            delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_user            select  yes       yes       hidden    yes       hidden
rpt_org_user            insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_user            update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_user            delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_leaderboard_month   select  yes       yes       hidden    yes       hidden
rpt_leaderboard_month   insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_leaderboard_month   update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_leaderboard_month   delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_day             select  yes       yes       yes       yes       hidden
rpt_org_day             insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_day             update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_day             delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_overview        select  yes       yes       yes       yes       hidden
rpt_org_overview        insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_overview        update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_org_overview        delete  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_scenario_insights   select  yes       yes       yes       yes       hidden
rpt_scenario_insights   insert  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_scenario_insights   update  no-grant  no-grant  no-grant  no-grant  no-grant
rpt_scenario_insights   delete  no-grant  no-grant  no-grant  no-grant  no-grant
"""


def _expected() -> dict[str, dict[str, dict[str, str]]]:
    table: dict[str, dict[str, dict[str, str]]] = {}
    for line in EXPECTED_TEXT.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, op, *outcomes = line.split()
        assert len(outcomes) == len(ACTORS), line
        table.setdefault(name, {})[op] = dict(zip(ACTORS, outcomes, strict=True))
    return table


EXPECTED = _expected()

# Where trainee A1's row (or org A's) is, per table.
SUBJECTS = {
    "orgs": "id = %(org)s",
    "org_members": "org_id = %(org)s and user_id = %(trainee)s",
    "dim_users": "org_id = %(org)s and user_id = %(trainee)s",
    "scenarios": "id = %(scenario)s",
    "dim_scenarios": "scenario_id = %(scenario)s",
    "scenario_metadata": "org_id = %(org)s and scenario_id = %(scenario)s",
    "assignments": "id = %(assignment)s",
    "scenario_attempts": "id = %(attempt)s",
    "attempt_activity": "attempt_id = %(attempt)s",
    "chat_sessions": "org_id = %(org)s and user_id = %(trainee)s",
    "user_scenario_progress": "org_id = %(org)s and user_id = %(trainee)s"
    " and scenario_id = %(scenario)s",
    "fact_scenario_attempts": "attempt_id = %(attempt)s",
    "fact_kpi_events": "attempt_id = %(attempt)s",
    "webhook_events": "org_id = %(org)s",
    "exports": "org_id = %(org)s and requested_by = %(trainee)s",
    "dedupe_records": "org_id = %(org)s and user_id = %(trainee)s",
    "scenario_completions_daily": "org_id = %(org)s and scenario_id = %(scenario)s",
    "rpt_changes": "org_id = %(org)s and user_id = %(trainee)s",
    "rpt_user_day": "org_id = %(org)s and user_id = %(trainee)s",
    "rpt_org_user": "org_id = %(org)s and user_id = %(trainee)s",
    "rpt_leaderboard_month": "org_id = %(org)s and user_id = %(trainee)s",
    "rpt_org_day": "org_id = %(org)s",
    "rpt_org_overview": "org_id = %(org)s",
    "rpt_scenario_insights": "org_id = %(org)s and scenario_id = %(scenario)s",
}
# An insert re-creates the subject after deleting it (as the owner, in the same
# rolled-back transaction), except where other rows hold on to it: there the
# copy gets a fresh key instead.
FRESH_KEY = {"scenarios": "id"}


@dataclass(frozen=True)
class Matrix:
    """A world of its own, with one row of trainee A1 in every tenant table."""

    world: World
    keys: dict[str, Any]


@pytest.fixture(scope="module")
def matrix(database: MigratedDatabase) -> Matrix:
    world = build_world(database.admin_url)
    org, trainee, scenario = (
        world.orgs["a"],
        world.users["trainee_a1"].user_id,
        world.scenarios["a"],
    )
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        attempt = conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
            " values (%s, %s, %s) returning id",
            [org, trainee, scenario],
        ).fetchone()[0]
        conn.execute(
            "insert into attempt_activity (org_id, attempt_id, owner_user_id, user_id, event_type)"
            " values (%s, %s, %s, %s, 'call_started')",
            [org, attempt, trainee, trainee],
        )
        # Completed: the triggers fill the fact, progress and metadata rows.
        conn.execute(
            "update scenario_attempts set status = 'completed', score = 80, ended_at = now(),"
            " duration_seconds = 60 where id = %s",
            [attempt],
        )
        conn.execute(
            "insert into fact_kpi_events (attempt_id, org_id, user_id, scenario_id, event_type)"
            " values (%s, %s, %s, %s, 'filler_word')",
            [attempt, org, trainee, scenario],
        )
        conn.execute(
            "insert into chat_sessions (org_id, user_id, title, scenario_progress, scenario_id)"
            " values (%s, %s, 'chat', %s, 'research')",
            [org, trainee, Jsonb({"currentStep": 0})],
        )
        conn.execute(
            "insert into webhook_events (source, event_id, event_type, org_id, payload)"
            " values ('clerk', %s, 'user.updated', %s, '{}')",
            [f"msg_{uuid.uuid4().hex}", org],
        )
        conn.execute(
            "insert into exports (org_id, requested_by, kind, status)"
            " values (%s, %s, 'attempts', 'pending')",
            [org, trainee],
        )
        conn.execute(
            "insert into dedupe_records (scope, key, org_id, user_id, request_hash, reply,"
            " expires_at) values (%s, 'k1', %s, %s, 'h', '{}', now() + interval '1 day')",
            [f"http:{org}:{trainee}", org, trainee],
        )
        # The reporting summaries, and one change logged after the refresh.
        conn.execute("select refresh_reporting_views('manual', 'test_rls')")
        conn.execute(
            "insert into rpt_changes (org_id, user_id, scenario_id, day)"
            " values (%s, %s, %s, current_date)",
            [org, trainee, scenario],
        )
    keys = {
        "org": org,
        "trainee": trainee,
        "scenario": scenario,
        "assignment": world.assignments["a1"],
        "attempt": attempt,
    }
    return Matrix(world, keys)


def test_the_matrix_names_every_tenant_table(database: MigratedDatabase) -> None:
    """A new tenant table fails here until its expected privileges are written down."""
    tables = {t["relname"] for t in _tenant_tables(database.admin_url)}
    assert tables == set(EXPECTED), "write the expected outcomes of the new table(s)"
    assert set(SUBJECTS) == set(EXPECTED)
    for table, ops in EXPECTED.items():
        assert set(ops) == {"select", "insert", "update", "delete"}, table


def _columns(conn: psycopg.Connection, table: str, privilege: str) -> list[str]:
    """The table's writable columns the app role holds ``privilege`` on, in order
    (all writable ones when it holds none, so the statement meets the refusal)."""
    rows = conn.execute(
        "select attname, has_column_privilege(%s, attrelid, attnum, %s) as granted"
        " from pg_attribute where attrelid = %s::regclass and attnum > 0"
        " and not attisdropped and attgenerated = '' and attidentity <> 'a' order by attnum",
        [APP_LOGIN, privilege, table],
    ).fetchall()
    granted = [r["attname"] for r in rows if r["granted"]]
    return granted or [r["attname"] for r in rows]


def _try(conn: psycopg.Connection, table: str, op: str, actor: str, matrix: Matrix) -> str:
    """What ``actor`` achieves doing ``op`` on the subject row, rolled back after."""
    user = matrix.world.users[ACTOR_USERS[actor]]
    ident = sql.Identifier(table)
    where = sql.SQL(SUBJECTS[table])
    with conn.transaction(force_rollback=True):
        subject = conn.execute(
            sql.SQL("select ctid::text as ctid, * from {} where {}").format(ident, where),
            matrix.keys,
        ).fetchall()
        assert len(subject) == 1, f"{table}: the subject is not one row"
        row = subject[0]
        if op == "insert":
            columns = [c for c in _columns(conn, table, "INSERT") if c != FRESH_KEY.get(table)]
            if table not in FRESH_KEY:
                conn.execute(sql.SQL("delete from {} where {}").format(ident, where), matrix.keys)
            values = [Jsonb(row[c]) if isinstance(row[c], dict | list) else row[c] for c in columns]
            statement = sql.SQL("insert into {} ({}) values ({})").format(
                ident,
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            )
        elif op == "update":
            column = sql.Identifier(_columns(conn, table, "UPDATE")[0])
            statement = sql.SQL("update {} set {} = {} where ctid = %s::tid").format(
                ident, column, column
            )
            values = [row["ctid"]]
        elif op == "delete":
            statement = sql.SQL("delete from {} where ctid = %s::tid").format(ident)
            values = [row["ctid"]]
        else:
            statement = sql.SQL("select 1 from {} where ctid = %s::tid").format(ident)
            values = [row["ctid"]]
        # As the Lambda's login (RLS forced on it), under the actor's context.
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(APP_LOGIN)))
        _set_context(conn, user.org_id, user.user_id, user.role)
        try:
            with conn.transaction():
                cur = conn.execute(statement, values)
        except psycopg.errors.InsufficientPrivilege as exc:
            return "refused" if "row-level security" in str(exc) else "no-grant"
        except psycopg.Error as exc:
            return f"error: {type(exc).__name__}: {exc}"
        affected = len(cur.fetchall()) if op == "select" else cur.rowcount
        return {0: "hidden", 1: "yes"}.get(affected, f"{affected} rows")


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_the_role_matrix(database: MigratedDatabase, matrix: Matrix, table: str) -> None:
    """Each caller's SELECT, INSERT, UPDATE and DELETE on trainee A1's row of ``table``."""
    with psycopg.connect(database.admin_url, row_factory=dict_row) as conn:
        found = {
            op: {actor: _try(conn, table, op, actor, matrix) for actor in ACTORS}
            for op in EXPECTED[table]
        }
    assert found == EXPECTED[table]

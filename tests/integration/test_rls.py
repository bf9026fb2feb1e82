"""Row-level security, exercised as the Lambda's login role (a member of the
application role, without BYPASSRLS), over every tenant table in the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from practice.config import Settings
from practice.db import Database
from practice.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.support import World

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
            "insert into attempt_activity (org_id, attempt_id, user_id, event_type) "
            "values (%s, %s, %s, 'call_started')",
            [b, attempt, trainee],
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


def test_org_a_sees_updates_and_inserts_nothing_of_org_b(
    database: MigratedDatabase, populated: World, app_conn: psycopg.Connection
) -> None:
    org_a, org_b = populated.orgs["a"], populated.orgs["b"]
    admin_a = populated.users["admin_a"].user_id
    failures: list[str] = []
    for table in (t["relname"] for t in _tenant_tables(database.admin_url)):
        ident, column = sql.Identifier(table), sql.Identifier(_org_column(table))
        with psycopg.connect(database.admin_url, row_factory=dict_row) as owner:
            sample = owner.execute(
                sql.SQL("select * from {} where {} = %s limit 1").format(ident, column), [org_b]
            ).fetchone()
            insertable = [
                r["attname"]
                for r in owner.execute(
                    "select attname from pg_attribute where attrelid = %s::regclass"
                    " and attnum > 0 and not attisdropped and attgenerated = ''"
                    " and attidentity <> 'a'",
                    [table],
                )
            ]
        if sample is None:
            failures.append(f"{table}: the test world has no org B row; add one to `populated`")
            continue
        with app_conn.transaction():
            _set_context(app_conn, org_a, admin_a, "admin")
            try:
                seen = app_conn.execute(
                    sql.SQL("select count(*) as n from {} where {} = %s").format(ident, column),
                    [org_b],
                ).fetchone()["n"]
                if seen:
                    failures.append(f"{table}: org A's admin sees {seen} rows of org B")
            except psycopg.errors.InsufficientPrivilege:
                pass  # not even readable by the app role: fine
        with app_conn.transaction():
            _set_context(app_conn, org_a, admin_a, "admin")
            try:
                updated = app_conn.execute(
                    sql.SQL("update {} set {} = {} where {} = %s").format(
                        ident, column, column, column
                    ),
                    [org_b],
                ).rowcount
                if updated:
                    failures.append(f"{table}: org A's admin updated {updated} rows of org B")
            except psycopg.errors.InsufficientPrivilege:
                pass
        row = {k: v for k, v in sample.items() if k in insertable}
        row = {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        insert = sql.SQL("insert into {} ({}) values ({})").format(
            ident,
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        )
        try:
            with app_conn.transaction():
                _set_context(app_conn, org_a, admin_a, "admin")
                app_conn.execute(insert, list(row.values()))
            failures.append(f"{table}: org A's admin inserted a row for org B")
        except psycopg.errors.InsufficientPrivilege:
            pass  # RLS WITH CHECK or a missing grant: both refuse, both are 42501
    assert failures == []


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


def test_a_pooled_connection_carries_no_context_into_the_next_request(
    database: MigratedDatabase, populated: World
) -> None:
    settings = Settings(database_url=database.app_url, db_pool_min=1, db_pool_max=1)
    db = Database(settings)
    db.open()
    try:
        trainee = populated.users["trainee_b1"]
        principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
        assert db.query(principal, "select count(*) as n from scenario_attempts")[0]["n"] >= 1
        # Same single connection, next request without a principal.
        after = db.query(
            None,
            "select pg_backend_pid() as pid, current_setting('app.org_id', true) as org,"
            " (select count(*) from scenario_attempts) as n",
        )[0]
        assert (after["org"] or "") == ""
        assert after["n"] == 0
        with db.pool.connection() as conn:
            outside = conn.execute("select current_setting('app.org_id', true) as org").fetchone()
            assert (outside["org"] or "") == ""
    finally:
        db.close()


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

"""The hot statements are planned once per server connection, not per request,
without protocol-level prepared statements (which RDS Proxy and PgBouncer in
transaction mode cannot keep): PL/pgSQL caches their plans in the backend."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dev.postgres import with_user
from practice.attempts.models import ActivityEvent, Draft, StartAttempt, SubmitAttempt
from practice.attempts.service import AttemptService
from practice.cache import TenantCache
from practice.config import Settings
from practice.db import Database
from practice.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.support import World

REQUESTS = 12  # PL/pgSQL settles on a generic plan after five custom ones

# What each hot statement's cached plan is recognised by in the backend.
STATEMENTS = {
    "state": "p_ids) and a.org_id = p_org_id",
    "save": "expected_version int, answers jsonb",
    "activity": "as i(ord int, attempt_id uuid, events jsonb)",
    "submit": "transcript_text text, score numeric",
}

_PLANS = """
select count(*) filter (where name = 'CachedPlanSource') as sources,
       count(*) filter (where name = 'CachedPlan') as generic_plans
  from pg_backend_memory_contexts where ident like '%%' || %s || '%%'
"""


@pytest.fixture
def one_connection(database: MigratedDatabase) -> Iterator[Database]:
    """The container's pool with a single connection straight to the server (not
    through a pooler, so every request meets the same backend)."""
    app = with_user(database.admin_url, "practice_lambda")
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("grant pg_read_all_stats to practice_lambda")  # to read its own contexts
    db = Database(Settings(database_url=app, db_pool_min=1, db_pool_max=1))
    db.open()
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            conn.execute("revoke pg_read_all_stats from practice_lambda")


def test_each_hot_statement_is_planned_once_per_connection(
    one_connection: Database, world: World
) -> None:
    trainee = world.users["trainee_a2"]
    principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
    settings = Settings()
    service = AttemptService(one_connection, TenantCache(), settings)
    for _ in range(REQUESTS):
        attempt = service.start(principal, StartAttempt(scenario_id=world.scenarios["a"])).id
        service.state(principal, attempt)
        service.save(principal, attempt, Draft(answers={"q": 1}, expected_version=1))
        service.log_activity(principal, attempt, [ActivityEvent(event_type="idle")])
        service.submit(principal, attempt, SubmitAttempt())

    with one_connection.pool.connection() as conn:
        assert conn.execute("select count(*) as n from pg_prepared_statements").fetchone()["n"] == 0
        for name, marker in STATEMENTS.items():
            plans = conn.execute(_PLANS, [marker]).fetchone()
            # One source and one generic plan, reused by every request after the
            # fifth: planned again per request, a text statement leaves neither.
            assert (plans["sources"], plans["generic_plans"]) == (1, 1), (name, plans)

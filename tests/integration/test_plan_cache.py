"""The hot statements are planned once per server connection, not per request,
without protocol-level prepared statements (which RDS Proxy and PgBouncer in
transaction mode cannot keep): PL/pgSQL caches their plans in the backend, 0015
makes it use them, 0016 keeps an update that completes nothing from running the
warehouse's completion pipeline, and 0017 makes that pipeline PL/pgSQL, so a
submit that completes an attempt plans nothing more (servers before 18 planned
a SQL-language function on every call). The same holds for the five tracking
functions (0021, and 0029's history page), whether the answer is read from
them (a cache miss) or only the member rule is asked again (a cache hit).

The evidence is the server's own count: with ``log_planner_stats`` on, every
planning sends a ``PLANNER STATISTICS`` message to a client that asks for log
messages. A request's two top-level text statements (``practice_enter`` and the
function call) are planned each time, as any unprepared statement is; nothing
inside the functions, or in the triggers their writes fire, may be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from dev import seed
from dev.postgres import throwaway_database
from practice.attempts.models import ActivityEvent, Draft, StartAttempt, SubmitAttempt
from practice.attempts.service import AttemptService
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from practice.core.keyset import instant_cursor
from practice.tracking.service import TrackingService
from tests.conftest import MigratedDatabase

ATTEMPTS = 10_000
WARM_UP = 6  # the plan cache decides between custom and generic plans after five
REQUESTS = 5
TOP_LEVEL = 2  # practice_enter(...) and the statement's function, both sent as text


@dataclass
class Planner:
    """A pool of one connection (the functions' role, straight to the server) whose
    backend reports each planning it does."""

    db: Database
    plannings: list[str] = field(default_factory=list)

    def count(self, request: Callable[[], object]) -> int:
        """Plannings the server did for one ``request()``."""
        self.plannings.clear()
        request()
        return len(self.plannings)


@pytest.fixture(scope="module")
def seeded(pg_server: str) -> Iterator[MigratedDatabase]:
    """A database of its own with the demo data at a production-like size. On a
    table of a few hundred rows the plan cache settles on generic plans by itself
    (measured: still so at 2,000 attempts, custom plans from 8,000 on), and the
    test could not fail."""
    with throwaway_database(pg_server, "practice_plans") as created:
        seed.load_demo_data(created.admin_url, attempts=ATTEMPTS, progress=False)
        yield created


@pytest.fixture
def planner(seeded: MigratedDatabase) -> Iterator[Planner]:
    # log_planner_stats is a superuser setting: the session starts as the owner,
    # sets it, and becomes the functions' login role (RLS and grants as in Lambda).
    options = "-c log_planner_stats=on -c client_min_messages=log -c role=practice_lambda"
    url = make_conninfo(seeded.admin_url, options=options)
    db = Database(Settings(database_url=url, db_pool_min=1, db_pool_max=1))
    db.open()
    found = Planner(db)
    try:
        with db.pool.connection() as conn:
            assert conn.execute("select current_user as who").fetchone()["who"] == "practice_lambda"
            conn.add_notice_handler(
                lambda notice: (
                    found.plannings.append(notice.message_primary or "")
                    if notice.message_primary == "PLANNER STATISTICS"
                    else None
                )
            )
        yield found
    finally:
        db.close()


def _demo_trainee(admin_url: str) -> tuple[Principal, UUID]:
    with psycopg.connect(admin_url) as conn:
        (org_id,) = conn.execute(
            "select id from orgs where clerk_org_id = %s", [seed.DEMO_CLERK_ORG_ID]
        ).fetchone()
        (scenario,) = conn.execute(
            "select id from scenarios where org_id is null and is_active order by id limit 1"
        ).fetchone()
    return Principal(seed.DEMO_TRAINEE, org_id, Role.TRAINEE), scenario


def test_each_hot_statement_is_planned_once_per_connection(
    planner: Planner, seeded: MigratedDatabase
) -> None:
    principal, scenario = _demo_trainee(seeded.admin_url)
    service = AttemptService(planner.db, TenantCache(), Settings())

    def one_attempt() -> dict[str, int]:
        attempt = service.start(principal, StartAttempt(scenario_id=scenario)).id
        draft = Draft(answers={"q": 1}, expected_version=1)
        return {
            "state": planner.count(lambda: service.state(principal, attempt)),
            "save": planner.count(lambda: service.save(principal, attempt, draft)),
            "activity": planner.count(
                lambda: service.log_activity(principal, attempt, [ActivityEvent(event_type="idle")])
            ),
            "submit": planner.count(lambda: service.submit(principal, attempt, SubmitAttempt())),
        }

    expected = dict.fromkeys(("state", "save", "activity", "submit"), TOP_LEVEL)
    for _ in range(WARM_UP):
        one_attempt()
    for _ in range(REQUESTS):
        counted = one_attempt()
        assert {name: counted[name] for name in expected} == expected

    with planner.db.pool.connection() as conn:
        assert conn.execute("select count(*) as n from pg_prepared_statements").fetchone()["n"] == 0


def test_each_tracking_function_is_planned_once_per_connection(
    planner: Planner, seeded: MigratedDatabase
) -> None:
    principal, scenario = _demo_trainee(seeded.admin_url)
    cache = TenantCache()
    service = TrackingService(planner.db, cache, Settings())
    # Any cursor makes the history read its keyset condition (the plan is generic).
    cursor = instant_cursor(datetime.now(UTC), UUID(int=2**128 - 1))
    reads: dict[str, Callable[[], object]] = {
        "history": lambda: service.history(principal, "me", None, 50, None),
        "history-scenario": lambda: service.history(principal, "me", scenario, 50, None),
        "history-next-page": lambda: service.history(principal, "me", None, 50, cursor),
        "best": lambda: service.best(principal, "me"),
        "improvement": lambda: service.improvement(principal, "me", scenario, 90),
        "recent": lambda: service.recent(principal, "me", None, 5),
        "recent-scenario": lambda: service.recent(principal, "me", scenario, 5),
        "comparison": lambda: service.comparison(principal, "me", scenario),
    }

    def miss(read: Callable[[], object]) -> int:
        cache.clear()  # the function runs, not the cache
        return planner.count(read)

    def hit(read: Callable[[], object]) -> int:
        read()  # cached: the next read asks the member rule again, and nothing else
        return planner.count(read)

    for _ in range(WARM_UP):
        for read in reads.values():
            miss(read)
            hit(read)
    for _ in range(REQUESTS):
        assert {name: miss(read) for name, read in reads.items()} == dict.fromkeys(reads, TOP_LEVEL)
        assert {name: hit(read) for name, read in reads.items()} == dict.fromkeys(reads, TOP_LEVEL)

    with planner.db.pool.connection() as conn:
        assert conn.execute("select count(*) as n from pg_prepared_statements").fetchone()["n"] == 0

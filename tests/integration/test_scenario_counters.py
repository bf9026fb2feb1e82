"""The engagement counters stay exact under concurrency: 50 users save, unsave,
rate and re-rate the same scenario at once, each on a connection of their own,
and scenario_metadata ends equal to a recount from user_scenario_progress."""

from __future__ import annotations

import threading
import uuid

import psycopg

from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from practice.scenarios.service import ScenarioService
from tests.conftest import MigratedDatabase
from tests.e2e.test_scenarios import counters
from tests.support import build_world

USERS = 50


def test_counters_equal_a_recount_after_50_concurrent_users(database: MigratedDatabase) -> None:
    world = build_world(database.admin_url)
    org = world.orgs["a"]
    tag = uuid.uuid4().hex[:6]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        scenario = conn.execute(
            "insert into scenarios (org_id, title) values (%s, 'Crowded') returning id", [org]
        ).fetchone()[0]
        users = [f"user_crowd_{i}_{tag}" for i in range(USERS)]
        for user_id in users:
            conn.execute(
                "insert into org_members (org_id, user_id, role) values (%s, %s, 'trainee')",
                [org, user_id],
            )
    db = Database(Settings(database_url=database.app_url, db_pool_min=USERS, db_pool_max=USERS))
    db.open()
    service = ScenarioService(db)
    start = threading.Barrier(USERS)
    failures: list[BaseException] = []

    def churn(i: int, user_id: str) -> None:
        me = Principal(user_id, org, Role.TRAINEE)
        try:
            start.wait()
            service.engage(me, scenario, "save")
            service.engage(me, scenario, "rate", rating=1 + i % 5)
            service.engage(me, scenario, "save")  # twice: counts once
            service.engage(me, scenario, "rate", rating=1 + (i * 7) % 5)  # replaces
            if i % 3 == 0:
                service.engage(me, scenario, "unsave")
            if i % 3 == 1:
                service.engage(me, scenario, "unrate")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=churn, args=(i, u)) for i, u in enumerate(users)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        db.close()
    assert not failures, failures[0]
    stored, recount = counters(database, org, scenario)
    assert stored == recount
    unsaved, unrated = len(range(0, USERS, 3)), len(range(1, USERS, 3))
    assert stored[0] == USERS - unsaved
    assert stored[1] == USERS - unrated

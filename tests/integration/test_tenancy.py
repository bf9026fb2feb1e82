"""Tenancy twice: the attempt service's own statements keep another org's rows
out even where row-level security does not apply, and every refusal leaves the
database as it was (asserted in the database, not by the error alone)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from practice.attempts.cache_admin import CacheAdmin, Preload
from practice.attempts.models import (
    ActivityEvent,
    ConfirmUpload,
    Draft,
    RequestUpload,
    StartAttempt,
    SubmitAttempt,
)
from practice.attempts.recordings import RecordingService
from practice.attempts.service import AttemptService
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Conflict, DomainError, Forbidden, NotFound
from practice.core.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.support import World, build_world


@dataclass(frozen=True)
class Attempts:
    """Org A's attempts of trainee A1: one being practised, one completed and scored."""

    world: World
    practising: uuid.UUID
    completed: uuid.UUID


@pytest.fixture(scope="module")
def attempts(database: MigratedDatabase) -> Attempts:
    # A world of its own: snapshots below cover every row of its two orgs.
    world = build_world(database.admin_url)
    org_a, owner = world.orgs["a"], world.users["trainee_a1"].user_id
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        practising, completed = (
            conn.execute(
                "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, answers)"
                ' values (%s, %s, %s, \'{"q1": "a"}\') returning id',
                [org_a, owner, world.scenarios["a"]],
            ).fetchone()[0]
            for _ in range(2)
        )
        conn.execute(
            "insert into attempt_activity (org_id, attempt_id, owner_user_id, user_id, event_type)"
            " values (%s, %s, %s, %s, 'call_started')",
            [org_a, practising, owner, owner],
        )
        conn.execute(
            "update scenario_attempts set status = 'completed', ended_at = now(), score = 70,"
            " scored_by = %s, duration_seconds = 60 where id = %s",
            [world.users["manager_a"].user_id, completed],
        )
        # A Clerk user may belong to several orgs: the owner is a trainee of org B too.
        conn.execute(
            "insert into org_members (org_id, user_id, role) values (%s, %s, 'trainee')",
            [world.orgs["b"], owner],
        )
    return Attempts(world, practising, completed)


def _snapshot(admin_url: str, world: World) -> dict[str, list[dict[str, Any]]]:
    """Every row of the world's orgs in the tables an attempt action may write."""
    orgs = [world.orgs["a"], world.orgs["b"]]
    tables = {
        "scenario_attempts": "id",
        "attempt_activity": "id",
        "fact_scenario_attempts": "attempt_id",
        "user_scenario_progress": "user_id, scenario_id",
        "scenario_metadata": "scenario_id",
    }
    with psycopg.connect(admin_url, row_factory=dict_row) as conn:
        return {
            table: conn.execute(
                f"select to_jsonb(t) as row from {table} t where org_id = any(%s) order by {key}",
                [orgs],
            ).fetchall()
            for table, key in tables.items()
        }


class Services:
    """The attempt endpoint's services over one Database."""

    def __init__(self, url: str) -> None:
        settings = Settings(database_url=url)
        self.db = Database(settings)
        self.db.open()
        cache = TenantCache()
        self.attempts = AttemptService(self.db, cache, settings)
        # No S3: every refusal here must come before the storage is asked.
        self.recordings = RecordingService(self.db, cache, settings, s3_override=_NoStorage())
        self.cache_admin = CacheAdmin(self.db, self.attempts)


class _NoStorage:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the storage was asked ({name}) for an attempt of another org")


@pytest.fixture(scope="module")
def owner_services(database: MigratedDatabase) -> Iterator[Services]:
    """The services logged in as the schema owner, a superuser: RLS does not apply."""
    services = Services(database.admin_url)
    yield services
    services.db.close()


@pytest.fixture(scope="module")
def app_services(database: MigratedDatabase) -> Iterator[Services]:
    """The services as the Lambda runs them: the login role, RLS applies."""
    services = Services(database.app_url)
    yield services
    services.db.close()


Action = Callable[[Services, Principal, Attempts], object]

# Everything the attempt endpoint does with an attempt id, aimed at org A's.
FOREIGN_ACTIONS: dict[str, Action] = {
    "state": lambda s, p, a: s.attempts.state(p, a.practising),
    "info": lambda s, p, a: s.attempts.info(p, a.practising),
    "save": lambda s, p, a: s.attempts.save(
        p, a.practising, Draft(answers={"q1": "stolen"}, expected_version=1)
    ),
    "activity": lambda s, p, a: s.attempts.log_activity(
        p, a.practising, [ActivityEvent(event_type="focus_lost")]
    ),
    "submit": lambda s, p, a: s.attempts.submit(p, a.practising, SubmitAttempt()),
    "submit a completed one": lambda s, p, a: s.attempts.submit(p, a.completed, SubmitAttempt()),
    "statistics": lambda s, p, a: s.attempts.statistics(p, a.practising),
    "request upload": lambda s, p, a: s.recordings.request_upload(
        p, a.practising, RequestUpload(content_type="audio/webm", size_bytes=1000)
    ),
    "confirm upload": lambda s, p, a: s.recordings.confirm_upload(
        p,
        a.practising,
        ConfirmUpload(
            step="confirm", key=f"recordings/{p.org_id}/{a.practising}/{uuid.uuid4()}.webm"
        ),
    ),
}
COACH_ACTIONS: dict[str, Action] = {
    "score a completed one": lambda s, p, a: s.attempts.submit(
        p, a.completed, SubmitAttempt(score=99, manager_comments="from another org")
    ),
    "active attempts": lambda s, p, a: s.attempts.active(p, a.practising),
    "cache report": lambda s, p, a: s.cache_admin.report(p, a.practising),
}


def _org_b_callers(world: World) -> dict[str, Principal]:
    owner = world.users["trainee_a1"].user_id
    return {
        # A Clerk user may belong to several orgs: the owner's own user id,
        # calling as a member of org B, must not reach the org A attempt.
        "the owner, as a member of org B": Principal(owner, world.orgs["b"], Role.TRAINEE),
        "org B's admin": Principal(world.users["admin_b"].user_id, world.orgs["b"], Role.ADMIN),
    }


def test_the_owner_login_bypasses_rls(owner_services: Services, attempts: Attempts) -> None:
    """The premise of the tests below: only the service's own filters stand in the way."""
    caller = _org_b_callers(attempts.world)["org B's admin"]
    rows = owner_services.db.query(
        caller, "select count(*) as n from scenario_attempts where id = %s", [attempts.practising]
    )
    assert rows == [{"n": 1}]


# A trainee asking for a coach's action is refused before the attempt is looked up.
FOREIGN_CASES = [
    *(("the owner, as a member of org B", action) for action in FOREIGN_ACTIONS),
    *(("org B's admin", action) for action in [*FOREIGN_ACTIONS, *COACH_ACTIONS]),
]


@pytest.mark.parametrize(("caller", "action"), FOREIGN_CASES)
def test_another_orgs_attempt_is_not_found_even_without_rls(
    database: MigratedDatabase,
    owner_services: Services,
    attempts: Attempts,
    caller: str,
    action: str,
) -> None:
    principal = _org_b_callers(attempts.world)[caller]
    run = {**FOREIGN_ACTIONS, **COACH_ACTIONS}[action]
    before = _snapshot(database.admin_url, attempts.world)
    with pytest.raises(NotFound):
        run(owner_services, principal, attempts)
    assert _snapshot(database.admin_url, attempts.world) == before


def test_starting_on_another_orgs_scenario_or_assignment_writes_nothing(
    database: MigratedDatabase, owner_services: Services, attempts: Attempts
) -> None:
    world = attempts.world
    principal = _org_b_callers(world)["the owner, as a member of org B"]
    before = _snapshot(database.admin_url, world)
    with pytest.raises(NotFound):
        owner_services.attempts.start(principal, StartAttempt(scenario_id=world.scenarios["a"]))
    with pytest.raises(NotFound):
        owner_services.attempts.start(
            principal,
            StartAttempt(scenario_id=world.scenarios["b"], assignment_id=world.assignments["a1"]),
        )
    assert _snapshot(database.admin_url, world) == before


def test_preloading_another_orgs_attempt_loads_nothing(
    owner_services: Services, attempts: Attempts
) -> None:
    principal = _org_b_callers(attempts.world)["org B's admin"]
    preload = Preload(operation="preload", attempt_ids=[attempts.practising])
    # Asked through another org's attempt, and naming it: neither is found.
    with pytest.raises(NotFound):
        owner_services.cache_admin.optimize(principal, attempts.practising, preload)
    assert owner_services.attempts.cache.stats(principal.org_id)["size"] == 0


# Refusals inside org A, as the Lambda runs (RLS applies): (caller, action, error).
REFUSALS: list[tuple[str, str, type[DomainError]]] = [
    ("trainee_a2", "save", NotFound),  # a teammate does not see it (RLS)
    ("manager_a", "save", Forbidden),  # the team's manager sees it, but drafts are the owner's
    ("manager_a", "activity", Forbidden),
    ("admin_a", "save", Forbidden),
    ("manager_a2", "save", NotFound),  # another team's manager does not see it
    ("manager_a2", "activity", NotFound),
    ("manager_a2", "submit", NotFound),
    ("manager_a2", "score a completed one", NotFound),
    ("trainee_a1", "score a completed one", Forbidden),  # the owner may not score
    ("trainee_a1", "submit a completed one with answers", Conflict),
]

INSIDE_ACTIONS: dict[str, Action] = {
    **FOREIGN_ACTIONS,
    **COACH_ACTIONS,
    "submit a completed one with answers": lambda s, p, a: s.attempts.submit(
        p, a.completed, SubmitAttempt(answers={"q1": "rewritten"})
    ),
}


@pytest.mark.parametrize(("caller", "action", "error"), REFUSALS)
def test_a_refusal_inside_the_org_writes_nothing(
    database: MigratedDatabase,
    app_services: Services,
    attempts: Attempts,
    caller: str,
    action: str,
    error: type[DomainError],
) -> None:
    user = attempts.world.users[caller]
    principal = Principal(user.user_id, user.org_id, Role(user.role))
    before = _snapshot(database.admin_url, attempts.world)
    with pytest.raises(error):
        INSIDE_ACTIONS[action](app_services, principal, attempts)
    assert _snapshot(database.admin_url, attempts.world) == before

"""`GET /attempts/{id}?action=stats` (get_attempt_statistics, 0008) against figures
computed here, from attempts crafted here, for each viewer: an admin sees the org's
attempts, a manager their own and their team's, a trainee their own."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest

from practice.attempts.service import AttemptService
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event
from tests.support import World, build_world

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Crafted:
    """One attempt as inserted: who, on which scenario, how it ended."""

    owner: str
    status: str
    score: Decimal | None = None
    duration: int | None = None
    scenario: str = "a"
    org: str = "a"


def _d(value: str) -> Decimal:
    return Decimal(value)


# Org A's scenario: trainees A1 and A2 are manager A's team, A3 is manager A2's.
# Scores on attempts that did not complete (a webhook may score a call in
# progress) must not count; a completed attempt without a score counts as
# completed and in the durations, not in the scores.
ATTEMPTS = [
    Crafted("trainee_a1", "completed", _d("61"), 610),
    Crafted("trainee_a1", "completed", _d("76.5"), 800),
    Crafted("trainee_a1", "completed", _d("80"), 905),
    Crafted("trainee_a1", "completed", _d("93.5"), 1201),
    Crafted("trainee_a1", "completed", None, 300),
    Crafted("trainee_a1", "in_progress", _d("99")),
    Crafted("trainee_a1", "abandoned", _d("40"), 120),
    Crafted("trainee_a1", "failed", None, 30),
    Crafted("trainee_a2", "completed", _d("80"), 420),  # ties with A1's 80
    Crafted("trainee_a2", "completed", _d("55"), 200),
    Crafted("trainee_a2", "completed", _d("52"), 415),
    Crafted("trainee_a2", "in_progress"),
    Crafted("trainee_a2", "abandoned", None, 50),
    Crafted("manager_a", "completed", _d("70.25"), 333),  # a manager's own attempt
    Crafted("trainee_a3", "completed", _d("30"), 1500),  # outside manager A's team
    Crafted("trainee_a3", "completed", _d("12.25"), 60),
    Crafted("trainee_a3", "failed", _d("5")),
    Crafted("trainee_a3", "in_progress"),
    # Elsewhere: another scenario of the same org, and another org on the
    # built-in scenario (shared by every org). Neither counts for org A's scenario.
    Crafted("trainee_a1", "completed", _d("1"), 9999, scenario="builtin"),
    Crafted("trainee_b1", "completed", _d("2"), 8888, scenario="builtin", org="b"),
    Crafted("trainee_b1", "completed", _d("3"), 7777, scenario="a", org="b"),
]

# Whose attempts each viewer sees (README, "Tenancy, twice").
VISIBLE = {
    "admin_a": {"admin_a", "manager_a", "manager_a2", "trainee_a1", "trainee_a2", "trainee_a3"},
    "manager_a": {"manager_a", "trainee_a1", "trainee_a2"},
    "trainee_a1": {"trainee_a1"},
}


def _rounded(value: Decimal | None) -> float | None:
    # PostgreSQL's round(numeric, 2) rounds half away from zero.
    return None if value is None else float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def expected_statistics(attempts: list[Crafted], scenario_id: uuid.UUID) -> dict[str, Any]:
    """The statistics of ``attempts`` as 0008 defines them, worked out in Python."""
    by_status = Counter(a.status for a in attempts)
    completed = [a for a in attempts if a.status == "completed"]
    scores = [a.score for a in completed if a.score is not None]
    durations = [Decimal(a.duration) for a in completed if a.duration is not None]
    total = len(attempts)
    return {
        "scenario_id": str(scenario_id),
        "total_attempts": total,
        "in_progress_attempts": by_status["in_progress"],
        "completed_attempts": by_status["completed"],
        "abandoned_attempts": by_status["abandoned"],
        "failed_attempts": by_status["failed"],
        "average_score": _rounded(statistics.mean(scores)) if scores else None,
        "median_score": _rounded(statistics.median(scores)) if scores else None,
        "average_duration_seconds": _rounded(statistics.mean(durations)) if durations else None,
        "completion_rate": _rounded(Decimal(100 * len(completed)) / total) if total else None,
    }


@dataclass(frozen=True)
class Scenario:
    """A world of its own with the crafted attempts inserted, and their ids."""

    world: World
    ids: list[uuid.UUID]  # in the order of ATTEMPTS

    def seen_by(self, viewer: str, scenario: str = "a") -> list[Crafted]:
        """The crafted attempts ``viewer`` (of org A) sees on one of org A's scenarios."""
        return [
            a
            for a in ATTEMPTS
            if a.org == "a" and a.scenario == scenario and a.owner in VISIBLE[viewer]
        ]


@pytest.fixture(scope="module")
def crafted(database: MigratedDatabase) -> Scenario:
    # Orgs and scenarios of this module alone: no other test's attempts count.
    world = build_world(database.admin_url)
    ids: list[uuid.UUID] = []
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for attempt in ATTEMPTS:
            (attempt_id,) = conn.execute(
                "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, status,"
                " score, duration_seconds, ended_at) values (%s, %s, %s, %s, %s, %s,"
                " case when %s then now() end) returning id",
                [
                    world.orgs[attempt.org],
                    world.users[attempt.owner].user_id,
                    world.scenarios[attempt.scenario],
                    attempt.status,
                    attempt.score,
                    attempt.duration,
                    attempt.status != "in_progress",
                ],
            ).fetchone()
            ids.append(attempt_id)
    return Scenario(world, ids)


def test_the_crafted_attempts_tell_the_viewers_apart(crafted: Scenario) -> None:
    """The premise of the tests below: a statistic computed over the wrong viewer's
    rows, or the other scenario's, would differ from the right one."""
    scenario_id = crafted.world.scenarios["a"]
    figures = {v: expected_statistics(crafted.seen_by(v), scenario_id) for v in VISIBLE}
    for field in ("total_attempts", "average_score", "median_score", "completion_rate"):
        assert len({f[field] for f in figures.values()}) == len(VISIBLE), field
    # An even number of scores for each viewer, the two middle ones distinct: the
    # median is their mean, none of the scores (a lower or upper median would be).
    for viewer in VISIBLE:
        scores = [
            a.score
            for a in crafted.seen_by(viewer)
            if a.status == "completed" and a.score is not None
        ]
        assert len(scores) % 2 == 0, viewer
        assert Decimal(str(figures[viewer]["median_score"])) not in scores, viewer


@pytest.mark.parametrize("viewer", sorted(VISIBLE))
def test_statistics_are_what_the_viewers_attempts_add_up_to(
    call, crafted: Scenario, viewer: str
) -> None:
    world = crafted.world
    # An attempt every viewer sees: trainee A1's in progress.
    anchor = next(
        attempt_id
        for a, attempt_id in zip(ATTEMPTS, crafted.ids, strict=True)
        if (a.owner, a.status, a.scenario) == ("trainee_a1", "in_progress", "a")
    )
    reply = call(
        attempt_event("GET", anchor, world.users[viewer], "stats", query={"type": "stats"})
    )
    assert reply.status == 200, reply.body
    assert reply.body == expected_statistics(crafted.seen_by(viewer), world.scenarios["a"])


def test_statistics_of_a_built_in_scenario_count_the_callers_org_only(
    call, crafted: Scenario
) -> None:
    world = crafted.world
    (mine,) = crafted.seen_by("admin_a", scenario="builtin")
    attempt_id = crafted.ids[ATTEMPTS.index(mine)]
    query = {"type": "stats"}
    reply = call(attempt_event("GET", attempt_id, world.users["admin_a"], "stats", query=query))
    assert reply.status == 200, reply.body
    assert reply.body == expected_statistics([mine], world.scenarios["builtin"])


def test_without_rls_a_built_in_scenario_still_counts_the_callers_org_only(
    database: MigratedDatabase, crafted: Scenario
) -> None:
    """Tenancy twice: logged in as the schema owner, whom RLS does not restrict,
    get_attempt_statistics' own org filter still keeps org B's attempts out."""
    settings = Settings(database_url=database.admin_url)
    service = AttemptService(Database(settings), TenantCache(), settings)
    service.db.open()
    admin = crafted.world.users["admin_a"]
    (mine,) = crafted.seen_by("admin_a", scenario="builtin")
    try:
        found = service.statistics(
            Principal(admin.user_id, admin.org_id, Role.ADMIN),
            crafted.ids[ATTEMPTS.index(mine)],
        )
    finally:
        service.db.close()
    assert found.model_dump(mode="json") == expected_statistics(
        [mine], crafted.world.scenarios["builtin"]
    )

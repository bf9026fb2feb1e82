"""Each tracking statement reads scenario_attempts through seed 000's indexes,
never by a sequential scan, on one large org among others, analyzed or not.

The evidence is the server's own, as in test_hot_plans: auto_explain logs the
plan of every statement inside the tracking functions (they are PL/pgSQL, each
statement planned once per connection, its generic plan forced), as the
functions' login role with row-level security applying.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dev.postgres import throwaway_database
from practice.tracking.service import BEST, COMPARISON, HISTORY, IMPROVEMENT, RECENT
from tests.integration.test_hot_plans import (
    SCENARIO,
    SIZES,
    Tables,
    capturing,
    describe,
    populate,
    relation_reads,
)

# The tracking indexes of seed 000 (0004): the three partial ones and the
# (org, user) index every status shares.
SEED_INDEXES = {
    "idx_scenario_attempts_user_scenario_time",
    "idx_scenario_attempts_user_scenario_score",
    "idx_scenario_attempts_user_recent",
    "idx_scenario_attempts_org_id_user_id",
}


@pytest.fixture(scope="module")
def template(pg_server: str) -> Iterator[str]:
    with throwaway_database(pg_server, "practice_track_tpl") as created:
        yield created.name


@pytest.fixture(scope="module", params=SIZES[1:], ids=lambda size: size.name)
def tables(request: pytest.FixtureRequest, pg_server: str, template: str) -> Iterator[Tables]:
    with throwaway_database(pg_server, "practice_track", template=template) as db:
        yield populate(db.admin_url, request.param)


def _params(tables: Tables, **values: Any) -> dict[str, Any]:
    return {"org_id": tables.org_id, "member": tables.trainee, **values}


CALLS = {
    "history": (HISTORY, {"scenario_id": None, "limit": 50, "before_at": None, "before_id": None}),
    "history-scenario": (
        HISTORY,
        {"scenario_id": SCENARIO, "limit": 50, "before_at": None, "before_id": None},
    ),
    "best": (BEST, {}),
    "improvement": (IMPROVEMENT, {"scenario_id": SCENARIO, "days_back": 90}),
    "recent": (RECENT, {"scenario_id": None, "limit": 5}),
    "recent-scenario": (RECENT, {"scenario_id": SCENARIO, "limit": 5}),
    "comparison": (COMPARISON, {"scenario_id": SCENARIO}),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_tracking_reads_use_seed_indexes(tables: Tables, name: str) -> None:
    statement, values = CALLS[name]
    with capturing(tables.admin_url) as capture:
        # Twice: the second call runs the plans the connection keeps.
        for _ in range(2):
            rows = capture.call(tables.context(), statement, _params(tables, **values))
        assert rows, "the trainee has completed attempts: the call returns rows"
        reads = [node for plan in capture.plans for node in relation_reads(plan)]
    assert reads, "the function read scenario_attempts"
    for node in reads:
        assert node["Node Type"] != "Seq Scan", describe(node)
        indexes = {node.get("Index Name")} | {
            child.get("Index Name") for child in node.get("Plans", ()) if "Index Name" in child
        }
        assert indexes & SEED_INDEXES, describe(node)

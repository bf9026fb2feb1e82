"""The query analysis of ``GET /attempts/{id}/stats?type=optimization``: the hot
statements with their figures, and recommendations that appear when a measured
figure crosses its threshold (figures crafted here), for admins only."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from practice.attempts import query_report
from tests.e2e.test_attempts import attempt_event, start
from tests.support import World

OPTIMIZATION = {"type": "optimization"}


def report(call, world: World, who: str = "admin_a") -> Any:
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    user = world.users[who]
    return call(attempt_event("GET", attempt["id"], user, "stats", query=OPTIMIZATION))


def test_without_pg_stat_statements_the_container_timings_of_the_org_are_shown(
    call, world: World, attempts_app: ModuleType
) -> None:
    """The test server does not preload the library: the container's own figures."""
    attempts_app.db.timings.clear()
    attempt = start(call, world.users["trainee_a1"], world.scenarios["a"])
    admin = world.users["admin_a"]
    for _ in range(3):
        assert call(attempt_event("GET", attempt["id"], admin, None)).status == 200
    reply = call(attempt_event("GET", attempt["id"], admin, "stats", query=OPTIMIZATION))
    assert reply.status == 200
    queries = reply.body["queries"]
    assert queries["source"] == "container"
    figures = {s["statement"]: s for s in queries["statements"]}
    states = figures["select * from attempt_states(%(org_id)s, %(ids)s)"]
    # three reads and the report's own check that the attempt is the org's
    assert (states["calls"], states["rows"], states["plans"]) == (4, 4, None)
    assert states["mean_ms"] > 0
    assert states["p95_ms"] > 0
    # Only this org's statements: org B's admin sees none of these calls.
    other = start(call, world.users["trainee_b1"], world.scenarios["b"])
    theirs = call(
        attempt_event("GET", other["id"], world.users["admin_b"], "stats", query=OPTIMIZATION)
    )
    their_states = {s["statement"]: s for s in theirs.body["queries"]["statements"]}
    assert their_states["select * from attempt_states(%(org_id)s, %(ids)s)"]["calls"] == 1


def test_database_wide_figures_are_off_unless_the_deployment_turns_them_on(
    call, world: World, attempts_app: ModuleType, monkeypatch: pytest.MonkeyPatch, crafted: Any
) -> None:
    """pg_stat_statements and the table counters hold every org's traffic: an org's
    admin sees only the container's figures of their org by default."""
    crafted(seq_scan=900, plans=1000, hits=900, attempts_app=attempts_app)
    monkeypatch.setattr(attempts_app.cache_admin, "database_wide", False)
    queries = report(call, world).body["queries"]
    assert queries["source"] == "container"
    assert queries["recommendations"] == []


def test_the_catalog_read_answers_as_the_app_role(
    call, world: World, attempts_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempts_app.cache_admin, "database_wide", True)
    reply = report(call, world)
    assert reply.status == 200
    # No table of the test database crosses the thresholds.
    assert all(r["kind"] != "missing_index" for r in reply.body["queries"]["recommendations"])


@pytest.fixture
def crafted(monkeypatch: pytest.MonkeyPatch) -> Any:
    """pg_stat_statements and the table counters as crafted figures: the report's
    own statements, given rows of our choosing."""

    def craft(seq_scan: int, plans: int, hits: int, attempts_app: ModuleType) -> None:
        monkeypatch.setattr(attempts_app.cache_admin, "database_wide", True)
        tables = (
            '[{"table": "scenario_attempts", "live_rows": 1000000,'
            f' "seq_scan": {seq_scan}, "idx_scan": 100}}]'
        )
        monkeypatch.setattr(
            query_report,
            "CATALOG",
            f"select true as statements, true as track_planning, '{tables}'::jsonb as tables",
        )
        monkeypatch.setattr(
            query_report,
            "STATEMENTS",
            "select 'select * from attempt_states($1, $2)' as statement, 1000::bigint as calls,"
            " 2000.0::float8 as total_ms, 2.0::float8 as mean_ms,"
            " 2.0::float8 + %(z)s * 0.5::float8 as p95_ms, 1000::bigint as rows,"
            f" case when %(track_planning)s then {plans}::bigint end as plans"
            " limit %(limit)s",
        )
        cache = attempts_app.cache
        figures = {"size": 5, "max_size": 10_000, "hits": hits, "misses": 1000 - hits}
        figures["hit_rate"] = hits / 1000
        monkeypatch.setattr(cache, "stats", lambda _org_id=None: figures)

    return craft


def test_recommendations_appear_when_the_figures_cross_their_thresholds(
    call, world: World, attempts_app: ModuleType, crafted: Any
) -> None:
    crafted(seq_scan=900, plans=1000, hits=100, attempts_app=attempts_app)
    queries = report(call, world).body["queries"]
    assert queries["source"] == "pg_stat_statements"
    (hot,) = queries["statements"]
    assert (hot["calls"], hot["mean_ms"], hot["plans"]) == (1000, 2.0, 1000)
    assert hot["p95_ms"] == pytest.approx(2.0 + query_report.Z95 * 0.5)
    found = {r["kind"]: r for r in queries["recommendations"]}
    assert set(found) == {"missing_index", "replanning", "low_cache_hit_rate"}
    assert (found["missing_index"]["figure"], found["missing_index"]["threshold"]) == (0.9, 0.5)
    assert (found["replanning"]["figure"], found["replanning"]["threshold"]) == (1.0, 0.5)
    low = found["low_cache_hit_rate"]
    assert (low["figure"], low["threshold"], low["crossed"]) == (0.1, 0.5, "below")


def test_no_recommendation_when_the_figures_stay_within_their_thresholds(
    call, world: World, attempts_app: ModuleType, crafted: Any
) -> None:
    crafted(seq_scan=10, plans=3, hits=900, attempts_app=attempts_app)
    queries = report(call, world).body["queries"]
    assert queries["source"] == "pg_stat_statements"
    assert queries["recommendations"] == []


@pytest.mark.parametrize("who", ["manager_a", "trainee_a1"])
def test_the_report_is_for_admins_only(call, world: World, who: str) -> None:
    assert report(call, world, who).status == 403

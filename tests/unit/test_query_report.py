"""The query report's recommendations: each appears when its measured figure
crosses its threshold, and not otherwise; each carries the figure and threshold."""

from __future__ import annotations

from typing import Any

import pytest

from practice.attempts import query_report as q
from practice.attempts.query_report import recommend

CALM_CACHE = {"size": 1, "max_size": 10, "hits": 0, "misses": 0, "hit_rate": 0.0}


def table(seq: int, idx: int, rows: int = q.BIG_TABLE_ROWS) -> dict[str, Any]:
    return {"table": "scenario_attempts", "live_rows": rows, "seq_scan": seq, "idx_scan": idx}


def statement(calls: int, plans: int | None) -> dict[str, Any]:
    sql = "select *\n  from attempt_states(%(org_id)s, %(ids)s)"
    return {"statement": sql, "calls": calls, "total_ms": 1.0, "mean_ms": 0.1, "p95_ms": 0.2,
            "rows": calls, "plans": plans}  # fmt: skip


def cache(hits: int, misses: int, size: int = 1) -> dict[str, Any]:
    total = hits + misses
    return {"size": size, "max_size": 10, "hits": hits, "misses": misses,
            "hit_rate": round(hits / total, 4) if total else 0.0}  # fmt: skip


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ([table(seq=50, idx=50)], 0.5),  # at the threshold
        ([table(seq=49, idx=51)], None),  # just under it
        ([table(seq=90, idx=10, rows=q.BIG_TABLE_ROWS - 1)], None),  # a small table
        ([table(seq=40, idx=0)], None),  # too few scans to judge
    ],
)
def test_a_missing_index_is_recommended_from_the_sequential_share(
    tables: list[dict[str, Any]], expected: float | None
) -> None:
    found = recommend([], tables, CALM_CACHE)
    if expected is None:
        assert found == []
        return
    (rec,) = found
    assert (rec.kind, rec.subject, rec.crossed) == ("missing_index", "scenario_attempts", "above")
    assert (rec.figure, rec.threshold) == (expected, q.SEQ_SCAN_SHARE)
    assert "50 sequential scans against 50 index scans" in rec.advice


@pytest.mark.parametrize(
    ("calls", "plans", "expected"),
    [
        (200, 100, 0.5),
        (200, 99, None),
        (q.MIN_CALLS - 1, q.MIN_CALLS - 1, None),  # too few calls
        (200, None, None),  # planning not tracked (or container figures)
    ],
)
def test_replanning_is_recommended_from_plans_per_call(
    calls: int, plans: int | None, expected: float | None
) -> None:
    found = recommend([statement(calls, plans)], [], CALM_CACHE)
    if expected is None:
        assert found == []
        return
    (rec,) = found
    assert (rec.kind, rec.figure, rec.threshold) == ("replanning", expected, q.REPLAN_RATIO)
    assert rec.subject == "select * from attempt_states(%(org_id)s, %(ids)s)"


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        (cache(hits=49, misses=51), 0.49),
        (cache(hits=50, misses=50), None),  # at the threshold is not below it
        (cache(hits=0, misses=q.MIN_LOOKUPS - 1), None),  # too few lookups
    ],
)
def test_a_low_cache_hit_rate_is_recommended_below_the_threshold(
    figures: dict[str, Any], expected: float | None
) -> None:
    found = recommend([], [], figures)
    if expected is None:
        assert found == []
        return
    (rec,) = found
    assert (rec.kind, rec.figure, rec.threshold, rec.crossed) == (
        "low_cache_hit_rate",
        expected,
        q.CACHE_HIT_RATE,
        "below",
    )
    assert "PRACTICE_CACHE_TTL_INFO" in rec.advice


def test_a_full_cache_is_told_to_grow() -> None:
    (rec,) = recommend([], [], cache(hits=10, misses=90, size=10))
    assert "PRACTICE_CACHE_MAX_ENTRIES" in rec.advice


def test_long_statements_are_labelled_on_one_line() -> None:
    assert q.label("select\n   1") == "select 1"
    assert len(q.label("x " * 500)) == 200

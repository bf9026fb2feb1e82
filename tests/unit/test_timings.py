"""The container's per-statement timings: figures by org, p95 of recent runs,
bounded, and a hook cheap enough for every query."""

from __future__ import annotations

import time
import uuid

from practice.core import timings
from practice.core.timings import StatementTimings

SQL = "select * from attempt_states(%(org_id)s, %(ids)s)"


def test_figures_are_per_org_with_the_p95_of_recent_runs() -> None:
    t = StatementTimings()
    org, other = uuid.uuid4(), uuid.uuid4()
    for ms in range(1, 21):  # 1..20 ms
        t.record(org, SQL, ms / 1000, 2)
    t.record(org, "select 1", 0.5, 1)
    t.record(other, SQL, 9.0, 1)
    (costliest, state) = t.figures(org)
    assert costliest["statement"] == "select 1"  # 500 ms in total beats 210
    assert state["calls"] == 20
    assert state["rows"] == 40
    assert round(state["mean_ms"], 6) == 10.5
    assert round(state["p95_ms"], 6) == 19.0  # the 19th of 20 sorted runs
    assert [f["calls"] for f in t.figures(other)] == [1]
    assert t.figures(None) == []


def test_the_p95_is_of_the_last_runs_only() -> None:
    t = StatementTimings()
    org = uuid.uuid4()
    for _ in range(timings.SAMPLES):
        t.record(org, SQL, 1.0, 0)
    for _ in range(timings.SAMPLES):
        t.record(org, SQL, 0.001, 0)
    (figures,) = t.figures(org)
    assert round(figures["p95_ms"], 6) == 1.0
    assert figures["calls"] == 2 * timings.SAMPLES


def test_past_the_key_bound_new_statements_are_not_recorded(monkeypatch) -> None:
    monkeypatch.setattr(timings, "MAX_KEYS", 2)
    t = StatementTimings()
    org = uuid.uuid4()
    for n in range(3):
        t.record(org, f"select {n}", 0.001, 1)
    t.record(org, "select 0", 0.001, 1)  # a known one still counts
    assert sorted((f["statement"], f["calls"]) for f in t.figures(org)) == [
        ("select 0", 2),
        ("select 1", 1),
    ]


def test_the_hook_costs_a_few_microseconds_at_most() -> None:
    """What Database.query adds per statement: two clock reads and a record."""
    t = StatementTimings()
    org, n = uuid.uuid4(), 20_000
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(n):
            started = time.perf_counter()
            t.record(org, SQL, time.perf_counter() - started, 1)
        best = min(best, (time.perf_counter() - began) / n)
    print(f"timing hook: {best * 1e6:.2f} µs per statement")
    assert best < 5e-6

"""The query analysis of the optimization report (seed 004's
``analyzeQueryPerformance``): the hot statements' figures and the
recommendations those figures call for.

Figures come from ``pg_stat_statements`` where the extension is installed and
loaded (RDS; locally see docs/query-report.md), otherwise from this container's own
per-statement timings (``practice.core.timings``). Every recommendation is
derived from a measured figure crossing a threshold below, and carries both.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from practice.core.model import Model

# Statements listed, the costliest in total time first.
HOT_STATEMENTS = 10
# Sequential scans: a table with at least BIG_TABLE_ROWS live rows whose scans
# are sequential at least SEQ_SCAN_SHARE of the time, over MIN_SCANS scans.
BIG_TABLE_ROWS = 10_000
SEQ_SCAN_SHARE = 0.5
MIN_SCANS = 50
# Re-planning (pg_stat_statements with track_planning): at least REPLAN_RATIO
# plans per call over MIN_CALLS calls.
REPLAN_RATIO = 0.5
MIN_CALLS = 100
# The org's cache: a hit rate below CACHE_HIT_RATE over MIN_LOOKUPS lookups.
CACHE_HIT_RATE = 0.5
MIN_LOOKUPS = 100
# pg_stat_statements keeps a mean and a standard deviation, no distribution:
# its p95 is estimated as mean + 1.645 standard deviations (normal law).
Z95 = 1.645

# Whether pg_stat_statements can answer (installed, and loaded: its settings
# exist only once the library is), whether it counts plans, and the tables'
# scan counters.
CATALOG = """
select exists (select 1 from pg_extension where extname = 'pg_stat_statements')
       and current_setting('pg_stat_statements.track', true) is not null as statements,
       coalesce(current_setting('pg_stat_statements.track_planning', true), 'off') = 'on'
           as track_planning,
       coalesce((select jsonb_agg(jsonb_build_object(
                    'table', relname, 'live_rows', n_live_tup,
                    'seq_scan', coalesce(seq_scan, 0), 'idx_scan', coalesce(idx_scan, 0)))
                  from pg_stat_user_tables where schemaname = 'public'), '[]') as tables
"""

# The hot statements of this database run by the login role.
STATEMENTS = """
select query as statement, calls, total_exec_time as total_ms, mean_exec_time as mean_ms,
       mean_exec_time + %(z)s * stddev_exec_time as p95_ms, rows,
       case when %(track_planning)s then plans end as plans
  from pg_stat_statements
 where dbid = (select oid from pg_database where datname = current_database())
   and userid = (select oid from pg_roles where rolname = current_user)
 order by total_exec_time desc
 limit %(limit)s
"""


class StatementFigures(Model):
    """One hot statement: calls, mean and p95 time (ms), rows returned in all,
    and plans made (pg_stat_statements with track_planning only)."""

    statement: str
    calls: int
    total_ms: float
    mean_ms: float
    p95_ms: float
    rows: int
    plans: int | None = None


class Recommendation(Model):
    """Something to act on: the measured ``figure`` of ``subject`` that crossed
    ``threshold`` (``above`` or ``below`` it), and what to do."""

    kind: Literal["missing_index", "replanning", "low_cache_hit_rate"]
    subject: str
    measure: str
    figure: float
    threshold: float
    crossed: Literal["above", "below"]
    advice: str


class QueryReport(Model):
    """The hot statements (``source``: pg_stat_statements, database-wide for the
    login role, p95 estimated as mean + 1.645 sd; or ``container``: this
    container's own timings of the org's statements, p95 of the last 64 runs)
    and the recommendations their figures call for."""

    source: Literal["pg_stat_statements", "container"]
    statements: list[StatementFigures]
    recommendations: list[Recommendation]


def label(sql: str) -> str:
    """A statement as one line, at most 200 characters."""
    text = re.sub(r"\s+", " ", sql).strip()
    return text if len(text) <= 200 else text[:199] + "…"


def recommend(
    statements: list[dict[str, Any]],
    tables: list[dict[str, Any]],
    cache: dict[str, Any],
) -> list[Recommendation]:
    """The recommendations these figures call for, each with its figure."""
    found: list[Recommendation] = []
    for t in tables:
        scans = t["seq_scan"] + t["idx_scan"]
        if t["live_rows"] < BIG_TABLE_ROWS or scans < MIN_SCANS:
            continue
        share = t["seq_scan"] / scans
        if share >= SEQ_SCAN_SHARE:
            found.append(
                Recommendation(
                    kind="missing_index",
                    subject=t["table"],
                    measure="share of scans that are sequential",
                    figure=round(share, 4),
                    threshold=SEQ_SCAN_SHARE,
                    crossed="above",
                    advice=(
                        f"{t['seq_scan']} sequential scans against {t['idx_scan']} index scans"
                        f" of {t['table']} ({t['live_rows']} live rows): find the statement"
                        " filtering it on unindexed columns (EXPLAIN the hot statements)"
                        " and add an index on them"
                    ),
                )
            )
    for s in statements:
        if s.get("plans") is None or s["calls"] < MIN_CALLS:
            continue
        ratio = s["plans"] / s["calls"]
        if ratio >= REPLAN_RATIO:
            found.append(
                Recommendation(
                    kind="replanning",
                    subject=label(s["statement"]),
                    measure="plans per call",
                    figure=round(ratio, 4),
                    threshold=REPLAN_RATIO,
                    crossed="above",
                    advice=(
                        f"planned {s['plans']} times in {s['calls']} calls: keep it a prepared"
                        " statement (PRACTICE_DB_PREPARE_THRESHOLD) or give its function"
                        " plan_cache_mode = force_generic_plan (as sql/migrations/0015)"
                    ),
                )
            )
    lookups = cache["hits"] + cache["misses"]
    if lookups >= MIN_LOOKUPS and cache["hit_rate"] < CACHE_HIT_RATE:
        full = cache["size"] >= cache["max_size"]
        found.append(
            Recommendation(
                kind="low_cache_hit_rate",
                subject="cache",
                measure="hit rate of the org's cache lookups",
                figure=round(cache["hit_rate"], 4),
                threshold=CACHE_HIT_RATE,
                crossed="below",
                advice=(
                    f"{cache['hits']} hits in {lookups} lookups: "
                    + (
                        f"the cache is full ({cache['size']} entries): raise"
                        " PRACTICE_CACHE_MAX_ENTRIES"
                        if full
                        else "entries expire before reuse: raise PRACTICE_CACHE_TTL_INFO and"
                        " PRACTICE_CACHE_TTL_STATS, or preload info (PATCH .../optimize)"
                    )
                ),
            )
        )
    return found

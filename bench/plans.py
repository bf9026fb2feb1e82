"""What each way of not re-planning buys: the `state` read with its RLS context in
one pipeline on a raw connection, four ways, over the same attempts in one run.

- a text statement, unprepared: parsed and planned on every call (what a proxy
  forces on plain SQL);
- the same statement prepared by the driver (``PRACTICE_DB_PREPARE_THRESHOLD=0``:
  direct connections and PgBouncer >= 1.21 only; RDS Proxy pins on it);
- the SECURITY INVOKER PL/pgSQL function of migration 0014, unprepared (the
  default): the server caches its plan per backend whatever the protocol;
- that function, prepared as well.

Run: `python -m bench plans [--attempts N] [--calls N] [--blocks N]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import psycopg

from bench.attempts import _existing, _pick_people
from bench.common import alternating, bench_database, p50_p99, print_table, timed

# The body of attempt_states() (0014) as a text statement.
TEXT_STATE = """
select a.id, a.org_id, a.clerk_user_id, a.scenario_id, a.assignment_id, a.status,
       a.version, a.answers, a.auto_save_data, a.started_at, a.ended_at,
       a.duration_seconds, a.submitted_at, a.last_activity_at, a.recording_path,
       a.vapi_call_id, a.updated_at
  from scenario_attempts a
 where a.id = any (%(ids)s) and a.org_id = %(org_id)s
"""


def _ways(app_url: str, people: dict[str, Any], ids: list) -> dict[str, Callable[[int], object]]:
    from practice.attempts.service import STATES
    from practice.core.db import ENTER

    context = {
        "org_id": people["org_id"],
        "user_id": people["admin"],
        "role": "admin",
        "statement_timeout": "10s",
    }

    def way(prepare_threshold: int | None, sql: str) -> Callable[[int], object]:
        conn = psycopg.connect(app_url, autocommit=True, prepare_threshold=prepare_threshold)

        def call(i: int) -> object:
            with conn.pipeline():
                conn.execute(ENTER, context)
                cursor = conn.execute(sql, {"org_id": people["org_id"], "ids": [ids[i]]})
            return cursor.fetchall()

        return call

    return {
        "text statement, unprepared": way(None, TEXT_STATE),
        "text statement, prepared": way(0, TEXT_STATE),
        "PL/pgSQL function, unprepared (default)": way(None, STATES),
        "PL/pgSQL function, prepared": way(0, STATES),
    }


def main(argv: list[str] | None = None) -> None:
    """Seed, warm each way up, measure them in alternating blocks and print."""
    parser = argparse.ArgumentParser(prog="python -m bench plans")
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args(argv if argv is not None else [])
    with bench_database() as db:
        from dev import seed

        print(f"seeding {args.attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=args.attempts, progress=False)
        people = _pick_people(db.admin_url)
        ids = _existing(db.admin_url, people["org_id"], args.calls)
        ways = _ways(db.app_url, people, ids)
        for call in ways.values():
            timed(50, call)  # a plan, a prepared statement, a warm backend
        samples = alternating(ways, len(ids), args.blocks)
    floor = p50_p99(samples["PL/pgSQL function, unprepared (default)"])[0]
    rows = []
    for name, found in samples.items():
        p50, p99 = p50_p99(found)
        rows.append((name, f"{p50:.3f} ms", f"{p99:.3f} ms", f"{p50 / floor:.2f}x"))
    print_table(
        f"state with its context in one pipeline, {len(ids):,} calls each, alternating",
        rows,
        ("way", "p50", "p99", "p50 vs the default"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])

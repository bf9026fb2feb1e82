"""Whether an autosave costs the same in a small org and a large one: `save` p50
through the attempts handler while ONE org holds 2,500 attempts, then 100,000.

One process, one pooled connection (so one backend and its cached plans), three
figures:

- 2,500 attempts in the org, the connection's plans made there;
- 100,000 in the same org, the same connection: the plans kept from 2,500, as a
  Lambda container's connection keeps them until an ANALYZE invalidates them
  (autovacuum is off on the table here, so that moment is the whole measure,
  not a minute of it);
- 100,000 after ANALYZE: every plan made afresh on the new statistics.

Target: each 100,000 figure within 20% of the 2,500 one. A save finds one row by
its key, so the org's size should not show; a plan that reaches it through the
org's attempts does.

Run: `python -m bench save_scaling [--calls N] [--small N] [--large N]`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import psycopg

from bench.attempts import BODY, Handler, _fresh_attempts, _pick_people
from bench.common import bench_database, p50_p99, print_table, use_function_environment

WARM = 50  # saves before the first measure: the pool's connection plans the statements

# More history for the org's trainees, shaped as a seeded history: one attempt in
# five in progress, the others completed and scored (through the completion triggers).
_GROW = """
insert into scenario_attempts
       (org_id, clerk_user_id, scenario_id, status, started_at, ended_at,
        duration_seconds, score, answers)
select %(org)s, t.users[1 + g %% cardinality(t.users)], %(scenario)s,
       case when g %% 5 = 0 then 'in_progress' else 'completed' end::attempt_status,
       now() - g * interval '1 minute',
       case when g %% 5 = 0 then null
            else now() - g * interval '1 minute' + interval '9 minutes' end,
       case when g %% 5 = 0 then null else 540 end,
       case when g %% 5 = 0 then null else g %% 100 end,
       '{"q1": "yes"}'
  from generate_series(1, %(count)s) as g,
       (select array_agg(user_id order by user_id) as users
          from org_members
         where org_id = %(org)s and role = 'trainee' and deleted_at is null) as t
"""


def _org_size(admin_url: str, org_id: Any) -> int:
    with psycopg.connect(admin_url) as conn:
        return conn.execute(
            "select count(*) from scenario_attempts where org_id = %s", [org_id]
        ).fetchone()[0]


def _saves(handler: Handler, admin_url: str, people: dict[str, Any], count: int) -> list[float]:
    """Milliseconds of ``count`` saves through the handler, each on a new attempt."""
    fresh = _fresh_attempts(admin_url, people, count)
    return handler.time([handler.event("PATCH", i, "trainee", "save", BODY) for i in fresh])


def main(argv: list[str] | None = None) -> None:
    """Seed one org small, measure, grow it, measure with the same connection, analyze,
    measure again, and print."""
    parser = argparse.ArgumentParser(prog="python -m bench save_scaling")
    parser.add_argument("--calls", type=int, default=500, help="saves per measure")
    parser.add_argument("--small", type=int, default=2_500, help="the org's attempts first")
    parser.add_argument("--large", type=int, default=100_000, help="the org's attempts after")
    args = parser.parse_args(argv if argv is not None else [])
    calls = args.calls
    if args.small < WARM + calls or args.large < args.small + 2 * calls:
        parser.error("--small must hold the warm-up and one measure, --large two more")
    # One connection, so the second measure runs on the very backend (and plans)
    # the first one warmed.
    os.environ["PRACTICE_DB_POOL_MIN"] = os.environ["PRACTICE_DB_POOL_MAX"] = "1"
    with bench_database("practice_bench_scaling") as db:
        from dev import seed

        # The demo org takes half of what the seeder loads; the saves' own new
        # attempts bring it to --small.
        seeded = 2 * (args.small - WARM - calls)
        print(f"seeding {seeded:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=seeded, progress=False)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute("alter table scenario_attempts set (autovacuum_enabled = false)")
        people = _pick_people(db.admin_url)
        use_function_environment(db.app_url)
        handler = Handler(people)

        _saves(handler, db.admin_url, people, WARM)
        small = _saves(handler, db.admin_url, people, calls)
        small_size = _org_size(db.admin_url, people["org_id"])

        grow = args.large - small_size - 2 * calls
        print(f"growing the org by {grow:,} attempts …", file=sys.stderr)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute(
                _GROW, {"org": people["org_id"], "scenario": people["scenario"], "count": grow}
            )
        kept = _saves(handler, db.admin_url, people, calls)
        kept_size = _org_size(db.admin_url, people["org_id"])

        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute("analyze scenario_attempts")
        fresh = _saves(handler, db.admin_url, people, calls)
        fresh_size = _org_size(db.admin_url, people["org_id"])

    base = p50_p99(small)[0]
    rows = []
    for label, samples in (
        (f"{small_size:,} attempts in the org, planned there", small),
        (f"{kept_size:,}, same connection: plans kept from {small_size:,}", kept),
        (f"{fresh_size:,}, after ANALYZE (planned afresh)", fresh),
    ):
        p50, p99 = p50_p99(samples)
        ratio = "-" if samples is small else f"{p50 / base:.2f}x (target ≤1.2x)"
        rows.append((label, f"{p50:.3f} ms", f"{p99:.3f} ms", ratio))
    print_table(
        f"save through the attempts handler as one org grows, {calls:,} saves each",
        rows,
        ("measure", "p50", "p99", "p50 vs the small org"),
    )
    print(
        "each save is a PATCH …?action=save of a new in-progress attempt of one trainee of"
        " the org, through the handler and its pool of one connection."
    )


if __name__ == "__main__":
    main(sys.argv[1:])

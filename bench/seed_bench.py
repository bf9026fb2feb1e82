"""Seeding figures: ``dev.seed.load_demo_data`` of N attempts (default 1,000,000)
into a fresh embedded PostgreSQL, each beside a baseline measured in the same run:

* a plain COPY of N minimal rows into a scratch table without indexes (the
  fastest the server and psycopg move rows at all);
* the same seeder with row triggers on (what the bulk path replaces), and the
  bulk path, both at a smaller count so the trigger run stays short;
* peak RSS of the process that seeded N beside the one that seeded the
  smaller count, and tracemalloc peaks at two counts (flat = bounded memory).

Each load runs in a child process of its own, in a database of its own, so
its ru_maxrss is its own peak.

Run: ``python -m bench seed_bench [N] [--compare M]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.common import bench_database, print_table
from dev.stack import prepare_database, with_dbname

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ATTEMPTS = 1_000_000
DEFAULT_COMPARE = 50_000
TRACED = (10_000, 40_000)


# ---------------------------------------------------------------------------
# Child processes: one measurement each, reported as one JSON line on stdout
# ---------------------------------------------------------------------------


def _maxrss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_seed(url: str, attempts: int, mode: str) -> dict[str, Any]:
    from dev.seed import load_demo_data

    traced = mode == "traced"
    if traced:
        tracemalloc.start()
    began = time.perf_counter()
    summary = load_demo_data(
        url,
        attempts,
        progress=mode == "bulk-progress",
        use_triggers=mode == "triggers",
        now=datetime(2025, 6, 2, 9, 30, tzinfo=UTC),
    )
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "maxrss_mb": _maxrss_mb(),
        "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20 if traced else None,
        "timings": summary.timings,
        "derived": summary.derived,
        "summary": str(summary),
    }


def _child_copy(url: str, rows: int) -> dict[str, Any]:
    """A plain COPY of ``rows`` minimal rows (uuid, uuid, numeric, timestamptz)."""
    import uuid

    org = str(uuid.uuid4())
    at = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        conn.execute(
            "create table copy_baseline"
            " (id uuid, org_id uuid, score numeric, started_at timestamptz)"
        )
        began = time.perf_counter()
        with conn.cursor().copy("copy copy_baseline from stdin") as copy:
            for i in range(rows):
                copy.write_row((str(uuid.UUID(int=i)), org, i % 100, at))
        seconds = time.perf_counter() - began
    return {"seconds": seconds, "maxrss_mb": _maxrss_mb()}


def _run_child(url: str, kind: str, count: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its progress shows on our stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.seed_bench", "--child", kind, url, str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


def _fresh(server_url: str, name: str) -> str:
    """A new migrated database on the bench server."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_dbname(server_url, name)
    prepare_database(url)
    return url


def _ratio(figure: float, baseline: float) -> str:
    return f"{figure / baseline:.2f}x" if baseline else "n/a"


def run(attempts: int, compare: int) -> None:
    """Measure and print the seeding figures."""
    compare = min(compare, attempts)
    with bench_database("seed_main") as db:
        server = with_dbname(db.admin_url, "postgres")
        print(f"seeding {attempts:,} attempts (bulk path)…", file=sys.stderr, flush=True)
        main = _run_child(db.admin_url, "bulk-progress", attempts)
        baseline = _run_child(_fresh(server, "seed_copy"), "copy", attempts)
        print(f"bulk and trigger paths at {compare:,}…", file=sys.stderr, flush=True)
        small = _run_child(_fresh(server, "seed_small"), "bulk", compare)
        triggers = _run_child(_fresh(server, "seed_triggers"), "triggers", compare)
        print(f"tracemalloc at {TRACED[0]:,} and {TRACED[1]:,}…", file=sys.stderr, flush=True)
        traced = [_run_child(_fresh(server, f"seed_traced_{n}"), "traced", n) for n in TRACED]

    seconds, copy_seconds = main["seconds"], baseline["seconds"]
    print(f"\n{main['summary']}")
    print_table(
        f"dev.seed: {attempts:,} attempts into a fresh embedded PostgreSQL",
        [
            (
                "wall time",
                f"{seconds:.1f} s",
                f"plain COPY of {attempts:,} minimal rows: {copy_seconds:.1f} s",
                _ratio(seconds, copy_seconds),
            ),
            (
                "attempts/s (everything included)",
                f"{attempts / seconds:,.0f}/s",
                f"plain COPY: {attempts / copy_seconds:,.0f} rows/s",
                _ratio(copy_seconds, seconds),
            ),
            (
                f"wall time at {compare:,} (bulk)",
                f"{small['seconds']:.1f} s ({compare / small['seconds']:,.0f}/s)",
                f"triggers on: {triggers['seconds']:.1f} s "
                f"({compare / triggers['seconds']:,.0f}/s)",
                _ratio(small["seconds"], triggers["seconds"]),
            ),
            (
                "peak RSS of the seeding process",
                f"{main['maxrss_mb']:.0f} MB at {attempts:,}",
                f"{small['maxrss_mb']:.0f} MB at {compare:,}",
                _ratio(main["maxrss_mb"], small["maxrss_mb"]),
            ),
            (
                "tracemalloc peak (Python allocations)",
                f"{traced[1]['traced_peak_mb']:.2f} MB at {TRACED[1]:,}",
                f"{traced[0]['traced_peak_mb']:.2f} MB at {TRACED[0]:,}",
                _ratio(traced[1]["traced_peak_mb"], traced[0]["traced_peak_mb"]),
            ),
        ],
    )
    print_table(
        f"phases of the {attempts:,}-attempt load",
        [
            (phase, f"{spent:.1f} s", f"{100 * spent / seconds:.0f}%")
            for phase, spent in main["timings"].items()
        ],
        header=("phase", "seconds", "share of wall time"),
    )
    print_table(
        "derived rows written by set-based SQL",
        [(table, f"{count:,}") for table, count in main["derived"].items()],
        header=("table", "rows"),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m bench seed_bench [N] [--compare M]``."""
    parser = argparse.ArgumentParser(prog="python -m bench seed_bench")
    parser.add_argument("attempts", nargs="?", type=int, default=DEFAULT_ATTEMPTS)
    parser.add_argument("--compare", type=int, default=DEFAULT_COMPARE)
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "URL", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv or [])
    if args.child:
        kind, url, count = args.child[0], args.child[1], int(args.child[2])
        result = _child_copy(url, count) if kind == "copy" else _child_seed(url, count, kind)
        print(json.dumps(result), flush=True)
        return
    run(args.attempts, args.compare)


if __name__ == "__main__":
    main(sys.argv[1:])

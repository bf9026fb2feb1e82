"""Seeding figures: ``dev.seed.load_demo_data`` of N attempts (default 100,000,
COPY with the statement-level triggers writing the derived rows) into a fresh
database, each beside a baseline measured in the same run:

* a plain COPY of N minimal rows into a table without indexes or triggers
  (the fastest the server and psycopg move rows at all);
* peak RSS of the process that seeded N beside the one that seeded N/10, and
  tracemalloc peaks at two counts (flat = memory bounded whatever N).

Each load runs in a child process of its own, in a database of its own, so its
ru_maxrss is its own peak.

Run: ``python -m bench seed_bench [N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.common import print_table
from dev.postgres import server, throwaway_database
from dev.template import ROOT

DEFAULT_ATTEMPTS = 100_000
TRACED = (5_000, 20_000)
NOW = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)


def _child(kind: str, url: str, count: int) -> dict[str, Any]:
    """One measurement (``seed``, ``traced`` or ``copy``) in this process."""
    if kind == "traced":
        tracemalloc.start()
    began = time.perf_counter()
    summary = None
    if kind == "copy":
        with psycopg.connect(url) as conn:
            conn.execute("create table copy_baseline (id uuid, org uuid, n int, at timestamptz)")
            org = str(uuid.uuid4())
            with conn.cursor().copy("copy copy_baseline from stdin") as copy:
                for i in range(count):
                    copy.write_row((str(uuid.UUID(int=i)), org, i % 100, NOW))
    else:
        from dev.seed import load_demo_data

        summary = load_demo_data(url, count, progress=kind == "seed", now=NOW)
    return {
        "seconds": time.perf_counter() - began,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "traced_mb": tracemalloc.get_traced_memory()[1] / 2**20 if kind == "traced" else None,
        "timings": summary.timings if summary else {},
        "summary": str(summary),
    }


def _run_child(kind: str, url: str, count: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its progress shows on our stderr."""
    argv = [sys.executable, "-m", "bench", "seed_bench", "--child", kind, url, str(count)]
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(attempts: int) -> None:
    """Measure and print the seeding figures."""
    import os

    small = max(attempts // 10, 1)
    with ExitStack() as stack:
        url = stack.enter_context(server(os.environ.get("DATABASE_URL")))

        def fresh() -> str:
            return stack.enter_context(throwaway_database(url, "practice_seed_bench")).admin_url

        print(f"seeding {attempts:,} attempts…", file=sys.stderr, flush=True)
        main = _run_child("seed", fresh(), attempts)
        baseline = _run_child("copy", fresh(), attempts)
        smaller = _run_child("seed", fresh(), small)
        traced = [_run_child("traced", fresh(), n) for n in TRACED]
    seconds, copy_seconds = main["seconds"], baseline["seconds"]
    print(f"\n{main['summary']}")
    rss, small_rss = main["maxrss_mb"], smaller["maxrss_mb"]
    peak, small_peak = traced[1]["traced_mb"], traced[0]["traced_mb"]
    rows = [
        (
            "wall time",
            f"{seconds:.1f} s",
            f"plain COPY: {copy_seconds:.1f} s",
            seconds / copy_seconds,
        ),
        (
            "attempts/s",
            f"{attempts / seconds:,.0f}/s",
            f"plain COPY: {attempts / copy_seconds:,.0f}/s",
            copy_seconds / seconds,
        ),
        (
            "peak RSS",
            f"{rss:.0f} MB at {attempts:,}",
            f"{small_rss:.0f} MB at {small:,}",
            rss / small_rss,
        ),
        (
            "tracemalloc peak",
            f"{peak:.2f} MB at {TRACED[1]:,}",
            f"{small_peak:.2f} MB at {TRACED[0]:,}",
            peak / small_peak,
        ),
    ]
    title = f"dev.seed: {attempts:,} attempts into a fresh database"
    print_table(title, [(*row[:3], f"{row[3]:.2f}x") for row in rows])
    phases = [
        (name, f"{spent:.1f} s", f"{100 * spent / seconds:.0f}%")
        for name, spent in main["timings"].items()
    ]
    print_table("phases of the load", phases, header=("phase", "seconds", "share of wall time"))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench seed_bench [N]``."""
    parser = argparse.ArgumentParser(prog="python -m bench seed_bench")
    parser.add_argument("attempts", nargs="?", type=int, default=DEFAULT_ATTEMPTS)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], int(args.child[2]))), flush=True)
    else:
        run(args.attempts)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Cold starts: each function's import beside a bare FastAPI + Mangum + psycopg +
psycopg_pool import, and its first request right after the import (a fresh
process each time, as a new Lambda container), tracing off as in a container
without X-Ray.

Run: `python -m bench startup`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import bench_database, print_table, use_function_environment

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
RUNS = 11

# In a fresh process: import the function, then time its first request (a
# request that needs a pooled connection, as a container's first one does).
_COLD = """
import json, sys, time
started = time.perf_counter()
import importlib
module = importlib.import_module(sys.argv[1])
imported = time.perf_counter()
from dev.invoke import LambdaContext
from tests.support import http_event
event, context = http_event("GET", sys.argv[2]), LambdaContext()
asked = time.perf_counter()
response = module.handler(event, context)
answered = time.perf_counter()
assert response["statusCode"] < 500, response
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "first_ms": (answered - asked) * 1000}))
"""
_BARE = """
import json, time
started = time.perf_counter()
import fastapi, mangum, psycopg, psycopg_pool
print(json.dumps({"import_ms": (time.perf_counter() - started) * 1000}))
"""

# A route of each function that reaches the database without a caller.
_PROBES = {"attempts": "/health", "batch": "/attempts/batch/openapi.json"}


def _run(code: str, *args: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Measure and print the cold-start figures (no arguments)."""
    with bench_database() as db:
        use_function_environment(db.app_url)
        env = os.environ | {"PYTHONPATH": f"{ROOT / 'layers/shared/python'}:{ROOT}"}
        env.pop("AWS_XRAY_DAEMON_ADDRESS", None)
        # Round-robin: each round imports the bare stack and every function once,
        # so a drift of the host lands on all of them alike.
        bare_runs: list[dict[str, float]] = []
        runs: dict[str, list[dict[str, float]]] = {function: [] for function in FUNCTIONS}
        for _ in range(RUNS):
            bare_runs.append(_run(_BARE, env=env))
            for function in FUNCTIONS:
                probe = _PROBES.get(function, "/health")
                runs[function].append(_run(_COLD, f"functions.{function}.app", probe, env=env))
        bare = statistics.median(r["import_ms"] for r in bare_runs)
        rows = []
        for function in FUNCTIONS:
            probe = _PROBES.get(function, "/health")
            imported = statistics.median(r["import_ms"] for r in runs[function])
            first = statistics.median(r["first_ms"] for r in runs[function])
            rows.append(
                (
                    f"{function}: import",
                    f"{imported:.1f} ms",
                    f"{bare:.1f} ms bare",
                    f"{imported / bare:.2f}x (target ≤1.3x)",
                )
            )
            rows.append(
                (f"{function}: first request ({probe})", f"{first:.1f} ms", "target ≤ 50 ms", "")
            )
    print_table(f"cold start, median of {RUNS} fresh processes", rows)


if __name__ == "__main__":
    main()

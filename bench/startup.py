"""Issue 2's figures: the attempts module's cold import time beside a bare
FastAPI + Mangum + psycopg import, and `GET /health` p50 over 1,000 warm calls
beside a raw `select 1` round trip."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg

from bench.common import (
    bench_database,
    p50_p99,
    print_table,
    timed,
    use_function_environment,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def import_ms(statement: str, env: dict[str, str]) -> float:
    """Cumulative ms of the top-level imports in ``statement``, per `-X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total_us = 0
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header, or not an importtime line
        # Top-level imports are indented by one space; nested ones by more.
        if not parts[2].startswith("  "):
            total_us += int(parts[1])
    return total_us / 1000


def main(argv: list[str] | None = None) -> None:
    """Measure and print issue 2's figures (no arguments)."""
    with bench_database() as db:
        use_function_environment(db.app_url)
        env = os.environ | {"PYTHONPATH": f"{ROOT / 'layers/shared/python'}:{ROOT}"}
        app = [import_ms("import functions.attempts.app", env) for _ in range(RUNS)]
        bare = [
            import_ms("import fastapi, mangum, psycopg, psycopg_pool", env) for _ in range(RUNS)
        ]
        app_ms, bare_ms = statistics.median(app), statistics.median(bare)
        print_table(
            f"cold import (python -X importtime, median of {RUNS} fresh interpreters)",
            [
                (
                    "functions.attempts.app",
                    f"{app_ms:.1f} ms",
                    f"{bare_ms:.1f} ms bare fastapi+mangum+psycopg+psycopg_pool",
                    f"{app_ms / bare_ms:.2f}x",
                )
            ],
        )

        from dev.invoke import LambdaContext
        from functions.attempts import app as attempts
        from tests.support import http_event

        attempts.db.pool.wait(timeout=10)
        event, context = http_event("GET", "/health"), LambdaContext()
        for _ in range(100):
            attempts.handler(event, context)
        health = timed(1000, lambda _i: attempts.handler(event, context))
        with psycopg.connect(db.app_url, autocommit=True) as conn:
            raw = timed(1000, lambda _i: conn.execute("select 1").fetchone())
        (h50, h99), (r50, r99) = p50_p99(health), p50_p99(raw)
        print_table(
            "GET /health through the handler, 1,000 warm calls",
            [
                ("p50", f"{h50:.3f} ms", f"{r50:.3f} ms raw select 1", f"{h50 / r50:.1f}x"),
                ("p99", f"{h99:.3f} ms", f"{r99:.3f} ms raw select 1", f"{h99 / r99:.1f}x"),
            ],
        )


if __name__ == "__main__":
    main()

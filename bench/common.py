"""What the benchmarks share: a throwaway embedded database, timing, and reporting."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from dev.postgres import EmbeddedPostgres, free_port
from dev.stack import APP_LOGIN, prepare_database, with_dbname, with_user


@dataclass(frozen=True)
class BenchDatabase:
    """A migrated database: the owner's URL and the Lambda login's URL."""

    admin_url: str
    app_url: str


@contextmanager
def bench_database(name: str = "practice_bench") -> Iterator[BenchDatabase]:
    """A fresh embedded PostgreSQL 18 with the schema, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="practice-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port())
        server.start()
        try:
            with psycopg.connect(server.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            admin_url = with_dbname(server.admin_url, name)
            prepare_database(admin_url)
            yield BenchDatabase(admin_url, with_user(admin_url, APP_LOGIN))
        finally:
            server.stop(mode="immediate")


def use_function_environment(app_url: str) -> None:
    """Point the functions at the bench database, with tracing off as in tests."""
    os.environ["PRACTICE_DATABASE_URL"] = app_url
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PracticeBench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def timed(calls: int, fn: Callable[[int], object]) -> list[float]:
    """Milliseconds of each of ``calls`` calls of ``fn(i)``."""
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def print_table(
    title: str, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None
) -> None:
    """A small aligned table; the default header is what, figure, baseline, ratio."""
    print(f"\n== {title}")
    header = header or ("measure", "figure", "baseline (same run)", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))

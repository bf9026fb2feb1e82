"""What the benchmarks share: a throwaway migrated database, the functions'
environment, timing, and reporting."""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dev.invoke import ensure_import_paths
from dev.postgres import MigratedDatabase, server, throwaway_database

ensure_import_paths()
warnings.filterwarnings("ignore", message="No application metrics to publish")
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@contextmanager
def bench_database(prefix: str = "practice_bench") -> Iterator[MigratedDatabase]:
    """A fresh migrated database on DATABASE_URL's server, else on a temporary
    embedded PostgreSQL 18; removed afterwards."""
    with server(os.environ.get("DATABASE_URL")) as url, throwaway_database(url, prefix) as db:
        yield db


def use_function_environment(app_url: str) -> None:
    """Point the functions at the bench database, with tracing off as in tests."""
    os.environ["PRACTICE_DATABASE_URL"] = app_url
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PracticeBench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)


def timed(calls: int, fn: Callable[[int], object]) -> list[float]:
    """Milliseconds of each of ``calls`` calls of ``fn(i)``."""
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def alternating(
    ways: dict[str, Callable[[int], object]], calls: int, blocks: int
) -> dict[str, list[float]]:
    """Milliseconds of ``calls`` calls of each way, in ``blocks`` alternating runs
    over the same indices, so a drift of the server or the host during the run
    lands on every way alike, not on the one measured last."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    size = -(-calls // blocks)
    for first in range(0, calls, size):
        count = min(size, calls - first)
        for name, way in ways.items():
            samples[name] += timed(count, lambda j, w=way, o=first: w(o + j))
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def print_table(
    title: str, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None
) -> None:
    """A small aligned table; the default header is what, figure, baseline, ratio."""
    print(f"\n== {title}", flush=True)
    header = header or ("measure", "figure", "baseline (same run)", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    sys.stdout.flush()

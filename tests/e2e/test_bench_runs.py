"""Each benchmark the README quotes still runs: a figure nobody can reproduce is
no figure. Run small (a few hundred attempts, a few calls), on the suite's
server, in a process of its own as `make bench` runs it; the numbers are not
judged here, only that every measure and its baseline were printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# name, small arguments, a line each run must print
SMALL_RUNS = [
    ("attempts", ["300", "--calls", "20", "--blocks", "2"], "honest floor"),
    ("save_scaling", ["--small", "300", "--large", "1200", "--calls", "20"], "vs the small org"),
    ("reporting", ["3000", "--calls", "5"], "plain REFRESH"),
]


@pytest.mark.parametrize(("name", "args", "expected"), SMALL_RUNS, ids=[r[0] for r in SMALL_RUNS])
def test_the_benchmark_runs_and_prints_its_baselines(
    pg_server: str, name: str, args: list[str], expected: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": pg_server},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout

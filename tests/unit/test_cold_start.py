"""What a cold start imports: the X-Ray SDK only where tracing is on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))

# Imported in a child: importing a function opens its pool (without waiting), and
# this process's module cache must stay as the other tests left it. The database
# is a Unix socket in a folder that does not exist: no I/O.
_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _top_level_modules(function: str, **env: str) -> set[str]:
    environment = os.environ | {
        "PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}",
        "PRACTICE_DATABASE_URL": "host=/nonexistent/socket dbname=none",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    environment.pop("AWS_XRAY_DAEMON_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, f"functions.{function}.app"],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_without_tracing_does_not_import_the_xray_sdk(function: str) -> None:
    assert "aws_xray_sdk" not in _top_level_modules(function, POWERTOOLS_TRACE_DISABLED="true")
    assert "aws_xray_sdk" not in _top_level_modules(function)  # no daemon: not in Lambda


def test_the_functions_are_found() -> None:
    assert "attempts" in FUNCTIONS


_POOL_PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps({"closed": module.db.pool.closed}))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_under_snapstart_init_opens_no_connection(function: str) -> None:
    """A socket opened during a snapshotted init would be restored dead: under
    SnapStart the pool opens on the first request instead."""
    environment = os.environ | {
        "PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}",
        "PRACTICE_DATABASE_URL": "host=/nonexistent/socket dbname=none",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def pool_closed(**env: str) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", _POOL_PROBE, f"functions.{function}.app"],
            env=environment | env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout.splitlines()[-1])["closed"]

    assert pool_closed(AWS_LAMBDA_INITIALIZATION_TYPE="snap-start")
    assert not pool_closed(AWS_LAMBDA_INITIALIZATION_TYPE="on-demand")

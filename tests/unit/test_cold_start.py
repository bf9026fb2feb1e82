"""What a cold start does: the X-Ray SDK only where tracing is on, nothing that
only a failure or a retired API needs, no socket in an init that SnapStart
snapshots, and init's objects frozen out of the cyclic collector's full runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
# Functions that hold no pool: the deploy's migration connects once per deploy.
POOLLESS = {"migrate"}

# Imported in a child: importing a function opens its pool (without waiting), and
# this process's module cache must stay as the other tests left it. The database
# is a Unix socket in a folder that does not exist: no I/O.
_PROBE = """
import gc, importlib, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tracked": len(gc.get_objects()),
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
    "submodules": sorted(sys.modules),
    # None: a function without a pool (migrate connects per deploy).
    "pool_closed": module.db.pool.closed if hasattr(module, "db") else None,
}))
"""


def _imported(function: str, **env: str) -> dict[str, Any]:
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
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_without_tracing_does_not_import_the_xray_sdk(function: str) -> None:
    disabled = _imported(function, POWERTOOLS_TRACE_DISABLED="true")
    assert "aws_xray_sdk" not in disabled["modules"]
    assert "aws_xray_sdk" not in _imported(function)["modules"]  # no daemon: not in Lambda


@pytest.mark.parametrize("function", FUNCTIONS)
def test_init_leaves_out_the_retry_machinery_and_pydantic_v1(function: str) -> None:
    """tenacity is needed on a database failure only; pydantic.v1 is what FastAPI
    imports to rule out v1 models once any route declares a parameter (routes
    read theirs with practice.web.params)."""
    loaded = _imported(function, POWERTOOLS_TRACE_DISABLED="true")["submodules"]
    assert "tenacity" not in loaded
    assert "pydantic.v1" not in loaded


@pytest.mark.parametrize("function", FUNCTIONS)
def test_under_snapstart_init_opens_no_connection(function: str) -> None:
    """A socket opened during a snapshotted init would be restored dead: under
    SnapStart the pool opens on the first request instead."""
    snap = _imported(function, AWS_LAMBDA_INITIALIZATION_TYPE="snap-start")["pool_closed"]
    on_demand = _imported(function, AWS_LAMBDA_INITIALIZATION_TYPE="on-demand")["pool_closed"]
    if function in POOLLESS:
        assert (snap, on_demand) == (None, None)
        return
    assert snap is True
    assert on_demand is False


@pytest.mark.parametrize("function", FUNCTIONS)
def test_what_init_made_is_out_of_the_full_collections(function: str) -> None:
    """Init's objects live as long as the container: frozen, a full collection in
    some later request does not walk them."""
    found = _imported(function, POWERTOOLS_TRACE_DISABLED="true")
    assert found["frozen"] > 10 * found["tracked"]


def test_the_functions_are_found() -> None:
    assert "attempts" in FUNCTIONS

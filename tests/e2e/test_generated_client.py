"""A third party's client of our contracts: openapi-typescript, at its default
settings, generates types from the documents the running functions serve (the
attempts function's ``/openapi.json``, the batch function's
``/attempts/batch/openapi.json``); ``tests/client/lifecycle.ts`` drives one
attempt through start, state, save, activity, submit and ``multiple_states``
with openapi-fetch over those types alone. ``tsc`` must accept it, and the
compiled program must run it against the local gateway over real HTTP with a
trainee's real token. Needs Node 20+ and npm; the first run installs the pinned
packages (``npm ci``), later runs reuse them until ``package-lock.json`` changes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from dev.postgres import MigratedDatabase
from tests.e2e.conftest import Served
from tests.support import World

CLIENT = Path(__file__).resolve().parents[1] / "client"
BIN = CLIENT / "node_modules" / ".bin"
# What npm ci installed from, so an unchanged lock skips the install.
INSTALLED_STAMP = CLIENT / "node_modules" / ".practice-installed"
DOCUMENTS = {"attempts": "/openapi.json", "batch": "/attempts/batch/openapi.json"}

# In-process functions flush (disabled) metrics after every call; Powertools says so.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def _node_major() -> int | None:
    """Node's major version, or None without node and npm on PATH."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return int(re.match(r"v(\d+)", version.strip()).group(1))


NODE_MAJOR = _node_major()
if NODE_MAJOR is None:
    pytest.skip(
        "node and npm are not on PATH: the generated TypeScript client cannot be built",
        allow_module_level=True,
    )
if NODE_MAJOR < 20:
    pytest.skip(f"tests/client needs Node 20+, found {NODE_MAJOR}", allow_module_level=True)


def run(*args: str | Path, timeout: int = 120, **env: str) -> subprocess.CompletedProcess:
    """``args`` in tests/client with ``env`` added; never raises on a failure."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **env},
        check=False,
    )


def output(done: subprocess.CompletedProcess) -> str:
    """What a finished command printed, for a failure's message."""
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}".strip()


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """tests/client's pinned packages, installed by ``npm ci`` unless the lock is unchanged."""
    wanted = hashlib.sha256(
        (CLIENT / "package.json").read_bytes() + (CLIENT / "package-lock.json").read_bytes()
    ).hexdigest()
    if not INSTALLED_STAMP.exists() or INSTALLED_STAMP.read_text() != wanted:
        done = run("npm", "ci", "--no-audit", "--no-fund", timeout=600)
        assert done.returncode == 0, output(done)
        INSTALLED_STAMP.write_text(wanted)
    return CLIENT / "node_modules"


@pytest.fixture(scope="module")
def generated(node_modules: Path, served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``generated/<name>.ts`` from each document the gateway serves, by
    openapi-typescript with no options (its defaults)."""
    documents = tmp_path_factory.mktemp("openapi")
    target = CLIENT / "generated"
    shutil.rmtree(target, ignore_errors=True)  # nothing a previous run generated survives
    target.mkdir()
    for name, path in DOCUMENTS.items():
        response = served.client.get(path)
        assert response.status_code == 200, response.text
        document = documents / f"{name}.json"
        document.write_bytes(response.content)
        done = run(BIN / "openapi-typescript", document, "-o", target / f"{name}.ts")
        assert done.returncode == 0, output(done)
    return target


def test_the_generated_client_typechecks_and_runs_the_attempt_lifecycle(
    generated: Path, served: Served, world: World, database: MigratedDatabase
) -> None:
    # tsc with noEmitOnError: it writes build/ only when the whole program typechecks.
    shutil.rmtree(CLIENT / "build", ignore_errors=True)
    compiled = run(BIN / "tsc", "-p", ".")
    assert compiled.returncode == 0, (
        "lifecycle.ts does not typecheck against the types openapi-typescript "
        f"generated from the documents:\n{output(compiled)}"
    )

    trainee = world.users["trainee_a1"]
    scenario = world.scenarios["a"]
    done = run(
        "node",
        CLIENT / "build" / "lifecycle.js",
        PRACTICE_API_URL=served.url,
        PRACTICE_TOKEN=served.token(trainee.clerk_org_id, trainee.user_id, "trainee"),
        PRACTICE_SCENARIO_ID=str(scenario),
    )
    assert done.returncode == 0, output(done)
    found = re.search(r"lifecycle ok: attempt (\S+) completed at version (\d+)", done.stdout)
    assert found, output(done)

    # The program's word is checked against the database: its attempt, completed.
    attempt_id, version = uuid.UUID(found.group(1)), int(found.group(2))
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "select clerk_user_id, scenario_id, status::text, version, answers"
            " from scenario_attempts where id = %s",
            [attempt_id],
        ).fetchone()
    assert row is not None
    assert row[:4] == (trainee.user_id, scenario, "completed", version)
    assert row[4] == {"q1": "Discovery first, then the demo."}

"""The developer CLI as a developer runs it (subprocesses of ``python -m dev``):
``token`` mints what the authorizer accepts, and ``invoke`` replays events —
every ``events/<function>-<case>.<status>.json`` against a database holding the
demo data, plus inline events written here."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev import tokens
from dev.gateway import HttpRequest, build_event, jwt_settings, translate_response
from dev.invoke import function_for_event_file
from dev.postgres import MigratedDatabase, throwaway_database
from dev.seed import load_demo_data
from dev.stack import running_stack
from dev.template import functions, load_template
from tests.support import World, run_dev

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# The expected HTTP status is the last dotted part before .json: x-y.200.json.
STATUS_IN_NAME = re.compile(r"\.(\d{3})\.json$")
REPLAYED = sorted(p for p in EVENTS.glob("*.json") if STATUS_IN_NAME.search(p.name))


def status_of(result: Any) -> int:
    """The HTTP status API Gateway would answer for a handler's result."""
    return translate_response(result).status


# ---------------------------------------------------------------------------
# token
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v1", [False, True], ids=["v2", "v1"])
def test_token_command_output_verifies(tmp_path: Path, v1: bool) -> None:
    flags = ["--v1"] if v1 else []
    done = run_dev(
        "token",
        "--org",
        "org_cli",
        "--user",
        "user_cli",
        "--role",
        "manager",
        "--ttl",
        "120",
        *flags,
        PRACTICE_DEV_JWT_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    # Only the token, so $(python -m dev token …) works.
    assert token.count(".") == 2
    assert "\n" not in token
    issuer, audience = jwt_settings(load_template())
    claims = tokens.verify(token, issuer, audience, keys=tokens.load_keys(tmp_path))
    assert claims["sub"] == "user_cli"
    assert claims["exp"] - claims["iat"] == 120
    if v1:
        assert (claims["org_id"], claims["org_role"]) == ("org_cli", "org:manager")
    else:
        assert claims["v"] == 2
        assert claims["o"]["id"] == "org_cli"
        assert claims["o"]["rol"] == "manager"


def test_token_command_refuses_unknown_roles(tmp_path: Path) -> None:
    done = run_dev(
        "token", "--org", "o", "--user", "u", "--role", "owner", PRACTICE_DEV_JWT_DIR=str(tmp_path)
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


# ---------------------------------------------------------------------------
# invoke: events/ replayed
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events_database(pg_server: str) -> Iterator[str]:
    """A database of its own, migrated and loaded with the demo data the sample
    events refer to; yields the Lambda login role's URL."""
    with throwaway_database(pg_server, "practice_events") as db:
        load_demo_data(db.admin_url, progress=False)
        yield db.app_url


@pytest.fixture(scope="module")
def replays(events_database: str) -> dict[str, Any]:
    """Every status-named event file's result, by file name: one ``invoke`` run
    per function with all of its files."""
    fns = functions(load_template())
    by_function: dict[str, list[Path]] = {}
    for path in REPLAYED:
        by_function.setdefault(function_for_event_file(fns, path.name).logical_id, []).append(path)
    results: dict[str, Any] = {}
    for function, paths in by_function.items():
        flags = [arg for path in paths for arg in ("-e", str(path))]
        done = run_dev("invoke", function, *flags, "--database-url", events_database)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if len(paths) == 1:
            lines = [done.stdout]
        assert len(lines) == len(paths), done.stderr[-3000:]
        for path, line in zip(paths, lines, strict=True):
            results[path.name] = json.loads(line)
    return results


@pytest.mark.parametrize("path", REPLAYED, ids=[p.name for p in REPLAYED])
def test_event_file_replays_with_the_status_its_name_says(
    replays: dict[str, Any], path: Path
) -> None:
    expected = int(STATUS_IN_NAME.search(path.name).group(1))
    result = replays[path.name]
    assert "errorType" not in result, result
    assert status_of(result) == expected, result


# ---------------------------------------------------------------------------
# invoke: inline events
# ---------------------------------------------------------------------------


def _event(path: str, claims: dict[str, Any] | None = None, route: str | None = None) -> dict:
    request = HttpRequest("GET", path, headers=[("Host", "localhost"), ("User-Agent", "pytest")])
    return build_event(request, route_key=f"GET {route or path}", claims=claims)


def test_invoke_an_inline_event_file(tmp_path: Path, database: MigratedDatabase) -> None:
    event_file = tmp_path / "attempts-get-health.200.json"
    event_file.write_text(json.dumps(_event("/health")))
    done = run_dev(
        "invoke",
        "attempts",
        "-e",
        str(event_file),
        "--database-url",
        database.app_url,
        "--no-moto",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds only the response; logs go to stderr
    assert status_of(result) == 200
    assert json.loads(result["body"])["status"] == "ok"
    # Metrics are off locally: not even the cold start's EMF line.
    assert '"ColdStart"' not in done.stderr


def test_invoke_reads_stdin_and_passes_claims(database: MigratedDatabase) -> None:
    clerk_org, user = f"org_cli_{secrets.token_hex(3)}", f"user_cli_{secrets.token_hex(3)}"
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        (org_id,) = conn.execute(
            "insert into orgs (clerk_org_id, name) values (%s, 'CLI Org') returning id",
            [clerk_org],
        ).fetchone()
        conn.execute(
            "insert into org_members (org_id, user_id, role) values (%s, %s, 'trainee')",
            [org_id, user],
        )
    claims = tokens.build_claims(org=clerk_org, user=user, role="trainee")
    done = run_dev(
        "invoke",
        "AttemptsFunction",
        "-e",
        "-",
        "--database-url",
        database.app_url,
        "--no-moto",
        stdin=json.dumps(_event("/me", claims)),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert status_of(result) == 200, result
    body = json.loads(result["body"])
    assert (body["user_id"], body["org"]["clerk_org_id"]) == (user, clerk_org)


def test_invoke_names_an_unknown_function() -> None:
    done = run_dev("invoke", "no-such-function", "-e", "-", stdin="{}")
    assert done.returncode == 2
    assert "AttemptsFunction" in done.stderr


# ---------------------------------------------------------------------------
# seed, psql, reset
# ---------------------------------------------------------------------------


def _members(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select user_id from org_members order by user_id")]


def test_seed_honours_the_seed_and_the_database_url(pg_server: str) -> None:
    # The same seed gives the same people (their ids depend on the seed alone,
    # not on the clock or on where the checkout lives); another seed, others.
    with (
        throwaway_database(pg_server, "practice_seed_cli") as cli,
        throwaway_database(pg_server, "practice_seed_same") as same,
        throwaway_database(pg_server, "practice_seed_other") as other,
    ):
        done = run_dev("seed", "--attempts", "300", "--seed", "7", DATABASE_URL=cli.admin_url)
        assert done.returncode == 0, done.stderr
        assert "300 attempts" in done.stdout
        load_demo_data(same.admin_url, 300, seed=7, progress=False)
        load_demo_data(other.admin_url, 300, seed=8, progress=False)
        assert _members(cli.admin_url) == _members(same.admin_url)
        assert _members(cli.admin_url) != _members(other.admin_url)


def test_psql_passes_its_arguments_and_logs_in_as_the_app_role_with_a_members_context(
    database: MigratedDatabase, world: World
) -> None:
    query = ["-At", "-c", "select current_user, current_setting('is_superuser')"]
    admin = run_dev("psql", *query, DATABASE_URL=database.admin_url)
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.strip() == "postgres|on"
    member = world.users["trainee_a1"]
    count = [
        "-At",
        "-c",
        "select current_user, count(distinct clerk_user_id) from scenario_attempts",
    ]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
            " values (%s, %s, %s)",
            [member.org_id, member.user_id, world.scenarios["a"]],
        )
    app = run_dev(
        "psql", "--as-app", "--user", member.user_id, *count, DATABASE_URL=database.admin_url
    )
    assert app.returncode == 0, app.stderr
    # RLS applies as to the trainee's own requests: their attempts alone.
    assert app.stdout.strip() == "practice_lambda|1"
    assert f"RLS context of {member.user_id} (trainee" in app.stderr
    unknown = run_dev(
        "psql", "--as-app", "--user", "user_nobody", *count, DATABASE_URL=database.admin_url
    )
    assert unknown.returncode == 2
    assert "no member user_nobody" in unknown.stderr


def test_reset_refuses_while_the_stack_runs(tmp_path: Path) -> None:
    # A live pid in .dev/stack.pid is a running `make dev`: reset must not
    # stop its database or delete its keys.
    from dev.stack import reset

    dev_dir = tmp_path / ".dev"
    dev_dir.mkdir()
    (dev_dir / "stack.pid").write_text(str(os.getpid()))
    assert running_stack(dev_dir / "stack.pid") == os.getpid()
    with pytest.raises(Exception, match=r"make dev is running \(pid \d+\)"):
        reset(tmp_path / "pgdata", dev_dir)
    assert (dev_dir / "stack.pid").exists()
    (dev_dir / "stack.pid").write_text("999999999")  # a stack that died without cleaning up
    assert reset(tmp_path / "pgdata", dev_dir) == [f"deleted {dev_dir}"]

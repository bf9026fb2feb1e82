"""Round trips per request, counted on the wire: API Gateway events fed into the
attempts function's real handler, with libpq's trace on the function's single
pooled connection, principal resolution included."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import psycopg
import pytest

from dev.invoke import LambdaContext
from practice.core.config import get_settings
from tests.conftest import MigratedDatabase
from tests.support import User, World, build_world, http_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def function(database: MigratedDatabase) -> Iterator[ModuleType]:
    """A private copy of ``functions.attempts.app`` (its own pool and cache) with a
    pool of one connection, so every statement of a request crosses one traced wire."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PRACTICE_DB_POOL_MIN", "1")
        env.setenv("PRACTICE_DB_POOL_MAX", "1")
        get_settings.cache_clear()
        spec = importlib.util.spec_from_file_location(
            "attempts_app_round_trips", ROOT / "functions" / "attempts" / "app.py"
        )
        module = importlib.util.module_from_spec(spec)
        # Registered as an import would: pydantic resolves the route parameter
        # models' annotations through sys.modules.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    get_settings.cache_clear()  # the next importer reads the environment afresh
    module.db.pool.wait(timeout=10)
    yield module
    module.db.close()
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def world(database: MigratedDatabase) -> World:
    return build_world(database.admin_url)


def _call(function: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = function.handler(event, LambdaContext())
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return response["statusCode"], json.loads(raw) if raw else None


def _round_trips(function: ModuleType, event: dict[str, Any], trace: Path) -> tuple[int, int]:
    """The status and the round trips of one request: each run of messages the
    client sends before it reads an answer is one trip."""
    with trace.open("w") as out:
        # Traced, then returned: the handler checks out this same connection,
        # the only one the pool holds.
        with function.db.pool.connection() as conn:
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            status, body = _call(function, event)
        finally:
            with function.db.pool.connection() as conn:
                conn.pgconn.untrace()
    directions = [line.split("\t")[0] for line in trace.read_text().splitlines() if line]
    trips = sum(
        1
        for i, direction in enumerate(directions)
        if direction == "F" and (i == 0 or directions[i - 1] == "B")
    )
    assert status < 500, body
    return status, trips


def _attempt(world: World, user: User, database: MigratedDatabase) -> UUID:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        return conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
            " values (%s, %s, %s) returning id",
            [user.org_id, user.user_id, world.scenarios["a"]],
        ).fetchone()[0]


def _event(method: str, user: User, attempt: UUID, **kwargs: Any) -> dict[str, Any]:
    return http_event(
        method,
        f"/attempts/{attempt}",
        user=user,
        route="/attempts/{attemptId}",
        path_parameters={"attemptId": str(attempt)},
        **kwargs,
    )


REQUESTS = {
    "start": lambda world, user, _attempt: http_event(
        "POST", "/attempts", user=user, body={"scenario_id": str(world.scenarios["a"])}
    ),
    "state": lambda _world, user, attempt: _event("GET", user, attempt),
    "info": lambda _world, user, attempt: _event("GET", user, attempt, query={"action": "info"}),
    "save": lambda _world, user, attempt: _event(
        "PATCH",
        user,
        attempt,
        query={"action": "save"},
        body={"answers": {"q": "a"}, "expected_version": 1},
    ),
    "activity": lambda _world, user, attempt: _event(
        "POST",
        user,
        attempt,
        query={"action": "activity"},
        body={"events": [{"event_type": "focus_lost"}]},
    ),
    "submit": lambda _world, user, attempt: _event(
        "POST", user, attempt, query={"action": "submit"}, body={"status": "completed"}
    ),
}


# What each answers when it succeeds (README, "The attempt endpoint").
SUCCESS = {"start": 201, "state": 200, "info": 200, "save": 200, "activity": 201, "submit": 200}


@pytest.mark.parametrize("request_name", list(REQUESTS))
def test_a_request_costs_one_round_trip_once_the_caller_is_known(
    function: ModuleType,
    world: World,
    database: MigratedDatabase,
    tmp_path: Path,
    request_name: str,
) -> None:
    """Cold principal cache: the principal is resolved by a query of its own, so
    two trips; warm: one, the context and the work under one Sync. (Each request
    is on a fresh attempt: an info already cached would cost none.)"""
    user = world.users["trainee_a1"]
    build = REQUESTS[request_name]
    cold_attempt, warm_attempt = _attempt(world, user, database), _attempt(world, user, database)

    function.principals.cache.clear()
    status, cold = _round_trips(function, build(world, user, cold_attempt), tmp_path / "cold")
    assert status == SUCCESS[request_name]
    status, warm = _round_trips(function, build(world, user, warm_attempt), tmp_path / "warm")
    assert status == SUCCESS[request_name]
    print(f"{request_name}: {cold} round trips with a cold principal cache, {warm} warm")
    assert (cold, warm) == (2, 1)


@pytest.fixture(scope="module")
def batch_function(database: MigratedDatabase) -> Iterator[ModuleType]:
    """A private copy of ``functions.batch.app`` with a pool of one connection."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PRACTICE_DB_POOL_MIN", "1")
        env.setenv("PRACTICE_DB_POOL_MAX", "1")
        get_settings.cache_clear()
        spec = importlib.util.spec_from_file_location(
            "batch_app_round_trips", ROOT / "functions" / "batch" / "app.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    get_settings.cache_clear()
    module.db.pool.wait(timeout=10)
    yield module
    module.db.close()
    del sys.modules[spec.name]


def test_mixed_reads_cost_one_round_trip_for_every_kind_and_attempt(
    batch_function: ModuleType, world: World, database: MigratedDatabase, tmp_path: Path
) -> None:
    """States, infos and statistics of different attempts (and an invisible one):
    one trip once the caller is known, the context and the one statement."""
    user = world.users["manager_a"]
    attempts = [
        _attempt(world, world.users[name], database) for name in ("trainee_a1", "manager_a")
    ]
    foreign = _attempt(world, world.users["trainee_b1"], database)
    data = [
        {"type": kind, "attempt_id": str(attempt)}
        for attempt in [*attempts, foreign]
        for kind in ("state", "info", "stats")
    ]
    event = http_event(
        "POST", "/attempts/batch", user=user, body={"operation": "mixed_reads", "data": data}
    )
    batch_function.principals.cache.clear()
    _call(batch_function, event)  # the principal is known from here on
    status, trips = _round_trips(batch_function, event, tmp_path / "mixed")
    assert status == 200
    print(f"mixed_reads of {len(data)} reads: {trips} round trip(s)")
    assert trips == 1

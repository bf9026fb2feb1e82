"""The request path against its floor, in one run: `state`, `save` and `submit`
through the attempts handler over seeded attempts, each beside the same statement
with its RLS context on a raw connection in one pipeline (our own function, raw)
and beside the honest floor (the simplest plain statement doing the same job with
the same context and checks, raw); `GET /health` beside a raw `select 1`; and the
framework's own share (the handler with the database call stubbed) beside a bare
Starlette + Mangum route.

Each measure alternates between its baselines and the handler in blocks over the
same indices, so a drift of the host during the run lands on all of them.

Run: `python -m bench attempts [N] [--attempts N] [--calls N] [--blocks N]`
(N attempts seeded, 20,000 by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from bench.common import (
    alternating,
    bench_database,
    p50_p99,
    print_table,
    timed,
    use_function_environment,
)

type Calls = dict[str, Callable[[int], object]]

BODY = {"answers": {"q1": "yes"}, "auto_save_data": {"progress": 40}, "expected_version": 1}

# The honest floor of each statement: the simplest plain statement that does the
# same job, with the same tenant, owner, version and status checks, sent as text.
# What the functions cost beyond it (verdicts for any number of items, row locks,
# replayable submits) is theirs to justify. `{columns}` is the service's own
# column list (practice is importable once bench.common has set the paths).
# What the state read and a submit answer (the columns of attempt_states() and
# attempt_submit()), written out: the floor reads what the handler reads.
STATE_COLUMNS = (
    "id, org_id, clerk_user_id, scenario_id, assignment_id, status, version, answers,"
    " auto_save_data, started_at, ended_at, duration_seconds, submitted_at,"
    " last_activity_at, recording_path, vapi_call_id, updated_at"
)
RESULT_COLUMNS = (
    "id, clerk_user_id, scenario_id, status, version, started_at, ended_at,"
    " duration_seconds, submitted_at, ended_by, score, score_breakdown, kpis, feedback_text,"
    " feedback_json, manager_comments, scored_by, recording_path, updated_at"
)
FLOOR_STATE = """
select {columns}
  from scenario_attempts
 where id = %(id)s and org_id = %(org_id)s
"""
FLOOR_SAVE = """
update scenario_attempts
   set answers = coalesce(%(answers)s, answers),
       auto_save_data = coalesce(%(auto_save_data)s, auto_save_data),
       version = version + 1,
       last_activity_at = now(),
       updated_at = now()
 where id = %(id)s and org_id = %(org_id)s and clerk_user_id = %(user_id)s
   and version = %(expected_version)s and status = 'in_progress'
returning id, version, updated_at
"""
FLOOR_SUBMIT = """
update scenario_attempts
   set status = 'completed',
       ended_at = coalesce(ended_at, now()),
       submitted_at = now(),
       ended_by = %(user_id)s,
       duration_seconds = greatest(0, round(extract(epoch from now() - started_at)))::int,
       version = version + 1,
       updated_at = now()
 where id = %(id)s and org_id = %(org_id)s and clerk_user_id = %(user_id)s
   and status = 'in_progress'
returning {columns}
"""


def _pick_people(admin_url: str) -> dict[str, Any]:
    """The biggest org's admin and one trainee, and a scenario the trainee can use."""
    with psycopg.connect(admin_url) as conn:
        org_id, clerk_org_id = conn.execute(
            "select o.id, o.clerk_org_id from orgs o join scenario_attempts a on a.org_id = o.id"
            " group by o.id order by count(*) desc limit 1"
        ).fetchone()

        def member(role: str) -> str:
            return conn.execute(
                "select user_id from org_members where org_id = %s and role = %s"
                " and deleted_at is null order by user_id limit 1",
                [org_id, role],
            ).fetchone()[0]

        return {
            "org_id": org_id,
            "clerk_org_id": clerk_org_id,
            "admin": member("admin"),
            "trainee": member("trainee"),
            "scenario": conn.execute(
                "select id from scenarios where org_id is null and is_active limit 1"
            ).fetchone()[0],
        }


def _fresh_attempts(admin_url: str, people: dict[str, Any], count: int) -> list[uuid.UUID]:
    """``count`` new in-progress attempts of the trainee, inserted as the owner."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
            " select %s, %s, %s from generate_series(1, %s) returning id",
            [people["org_id"], people["trainee"], people["scenario"], count],
        ).fetchall()
    return [r[0] for r in rows]


def _existing(admin_url: str, org_id: Any, count: int) -> list[uuid.UUID]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "select id from scenario_attempts where org_id = %s limit %s", [org_id, count]
        ).fetchall()
    return [r[0] for r in rows]


def _claims(people: dict[str, Any], user: str, role: str) -> dict[str, str]:
    """The authorizer's claims (Clerk v2) of a member of the people's org."""
    return {"sub": user, "v": "2", "o": json.dumps({"id": people["clerk_org_id"], "rol": role})}


class Handler:
    """Events into the attempts function's handler; only the handler is timed."""

    def __init__(self, people: dict[str, Any]) -> None:
        from dev.invoke import LambdaContext
        from functions.attempts import app
        from tests.support import http_event

        self.app, self.http_event, self.context_type = app, http_event, LambdaContext
        app.db.pool.wait(timeout=10)
        self.claims = {role: _claims(people, people[role], role) for role in ("admin", "trainee")}

    def event(self, method: str, attempt_id: Any, role: str, action: str, body: Any = None):
        """A payload-2.0 event on one attempt."""
        return self.http_event(
            method,
            f"/attempts/{attempt_id}",
            claims=self.claims[role],
            query={"action": action},
            body=body,
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": str(attempt_id)},
        )

    def caller(self, events: list[dict]) -> Callable[[int], None]:
        """A call of the handler with ``events[i]`` (each must answer 200)."""
        # A context per invocation, as Lambda gives: its remaining time is the
        # budget. Made ahead (not timed), so each allows the longest invocation
        # Lambda runs: the budget is then the function's own 6 s, as at the start
        # of a real invocation, however long the alternating blocks take.
        contexts = [self.context_type(timeout=900.0) for _ in events]

        def one(i: int) -> None:
            response = self.app.handler(events[i], contexts[i])
            assert response["statusCode"] == 200, response

        return one

    def time(self, events: list[dict]) -> list[float]:
        """Milliseconds of each event through the handler."""
        return timed(len(events), self.caller(events))


def _handler_calls(handler: Handler, ids: list, fresh: list, calls: int) -> Calls:
    event, health = handler.event, handler.http_event("GET", "/health")
    return {
        "state": handler.caller([event("GET", i, "admin", "state") for i in ids]),
        "save": handler.caller([event("PATCH", i, "trainee", "save", BODY) for i in fresh]),
        "submit": handler.caller([event("POST", i, "trainee", "submit", {}) for i in fresh]),
        "health": handler.caller([health] * calls),
    }


def _measure_framework(handler: Handler, ids: list, admin_url: str, blocks: int) -> dict:
    """`state` through the handler with its database call answered from memory,
    beside a bare Starlette route behind Mangum returning a body of that size."""
    from mangum import Mangum
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    db = handler.app.db
    events = [handler.event("GET", i, "admin", "state") for i in ids]
    handler.time(events[:1])  # the caller's principal, cached as in any warm container
    with psycopg.connect(admin_url, row_factory=psycopg.rows.dict_row) as conn:
        stored = {
            attempt_id: conn.execute(
                "select * from scenario_attempts where id = %s", [attempt_id]
            ).fetchall()
            for attempt_id in ids
        }

    def from_memory(_principal: Any, _sql: str, params: Any = None, **_options: Any) -> list:
        return stored[params["ids"][0]]

    body = json.dumps({"id": str(ids[0]), "status": "in_progress"} | BODY).encode() * 4

    async def state(_request: Any) -> Response:
        return Response(body, media_type="application/json")

    floor = Mangum(Starlette(routes=[Route("/attempts/{attemptId}", state)]), lifespan="off")
    context = handler.context_type()
    real, db.query = db.query, from_memory
    try:
        return alternating(
            {"floor": lambda i: floor(events[i], context), "ours": handler.caller(events)},
            len(events),
            blocks,
        )
    finally:
        db.query = real


@contextmanager
def _raw_calls(app_url: str, people: dict, ids: list, fresh: list) -> Iterator[Calls]:
    """The same statements as the app role, with their context (practice_enter),
    pipelined into one round trip: what the handler sends, without the handler."""
    from practice.attempts.service import SAVE_DRAFTS, STATES, SUBMIT
    from practice.core.db import ENTER

    org = people["org_id"]

    def context(role: str) -> dict:
        user = people[role]
        return {"org_id": org, "user_id": user, "role": role, "statement_timeout": "10s"}

    def draft(i: int) -> dict:
        item = {"ord": 0, "attempt_id": str(fresh[i])} | BODY
        return {"org_id": org, "user_id": people["trainee"], "items": Jsonb([item])}

    def submit(i: int) -> dict:
        item = {"ord": 0, "attempt_id": str(fresh[i])}
        return {"org_id": org, "user_id": people["trainee"], "items": Jsonb([item])}

    with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:

        def piped(role: str, sql: str, params: dict) -> None:
            with conn.pipeline():
                conn.execute(ENTER, context(role))
                cursor = conn.execute(sql, params)
            cursor.fetchall()

        yield {
            "state": lambda i: piped("admin", STATES, {"org_id": org, "ids": [ids[i]]}),
            "save": lambda i: piped("trainee", SAVE_DRAFTS, draft(i)),
            "submit": lambda i: piped("trainee", SUBMIT, submit(i)),
            "health": lambda _i: conn.execute("select 1").fetchone(),
        }


@contextmanager
def _floor_calls(app_url: str, people: dict, ids: list, fresh: list) -> Iterator[Calls]:
    """The honest floor of state, save and submit: their plain statements as the app
    role, with the same context (practice_enter) pipelined into one round trip."""
    from practice.core.db import ENTER

    org = people["org_id"]
    state_sql = FLOOR_STATE.format(columns=STATE_COLUMNS)
    submit_sql = FLOOR_SUBMIT.format(columns=RESULT_COLUMNS)

    def params(role: str, attempt_id: Any, **values: Any) -> dict:
        return {"org_id": org, "user_id": people[role], "id": attempt_id, **values}

    draft = {
        "answers": Jsonb(BODY["answers"]),
        "auto_save_data": Jsonb(BODY["auto_save_data"]),
        "expected_version": BODY["expected_version"],
    }
    with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:

        def piped(role: str, sql: str, values: dict) -> None:
            context = {"org_id": org, "user_id": people[role], "role": role}
            with conn.pipeline():
                conn.execute(ENTER, context | {"statement_timeout": "10s"})
                cursor = conn.execute(sql, values)
            # Each must have done its job: a floor that checked nothing would be no floor.
            assert len(cursor.fetchall()) == 1, sql

        yield {
            "state": lambda i: piped("admin", state_sql, params("admin", ids[i])),
            "save": lambda i: piped("trainee", FLOOR_SAVE, params("trainee", fresh[i], **draft)),
            "submit": lambda i: piped("trainee", submit_sql, params("trainee", fresh[i])),
        }


def _interleaved(
    ways: dict[str, Calls], calls: int, blocks: int
) -> dict[str, dict[str, list[float]]]:
    """Each measure's ways (the handler and its baselines), alternating over the
    same indices; samples by way, then by measure."""
    samples: dict[str, dict[str, list[float]]] = {way: {} for way in ways}
    for name in ways["ours"]:
        present = {way: each[name] for way, each in ways.items() if name in each}
        for way, measured in alternating(present, calls, blocks).items():
            samples[way][name] = measured
    return samples


NONE = "-"  # a cell with no figure: the measure has no such baseline


def _ratio(figure: float, base: float, target: float | None = None) -> str:
    goal = f" (target ≤{target:g}x)" if target else ""
    return f"{figure / base:.2f}x{goal}"


def _report(samples: dict, framework: dict, title: str) -> None:
    ours, raw, floor = samples["ours"], samples["raw"], samples["floor"]
    rows = []
    targets = {"state": 2.0, "save": 2.0, "submit": 2.0, "health": 3.0}
    for name in ("state", "save", "submit", "health"):
        # Targets: p50 for all four and p99 for the statements against our own
        # statement raw; p50 for the statements against the honest floor.
        p99_target = None if name == "health" else 3.0
        for label, index, target in (("p50", 0, targets[name]), ("p99", 1, p99_target)):
            figure, base = p50_p99(ours[name])[index], p50_p99(raw[name])[index]
            row = [f"{name} {label}", f"{figure:.3f} ms", f"{base:.3f} ms"]
            row.append(_ratio(figure, base, target))
            if name in floor:
                least = p50_p99(floor[name])[index]
                floor_target = 2.0 if label == "p50" else None
                row += [
                    f"{least:.3f} ms",
                    _ratio(figure, least, floor_target),
                    _ratio(base, least),
                ]
            else:
                row += [NONE] * 3
            rows.append(tuple(row))
    for label, index in (("p50", 0), ("p99", 1)):
        figure, base = p50_p99(framework["ours"])[index], p50_p99(framework["floor"])[index]
        rows.append(
            (
                f"framework only {label}",
                f"{figure:.3f} ms",
                f"{base:.3f} ms",
                _ratio(figure, base),
                NONE,
                NONE,
                NONE,
            )
        )
    header = (
        "measure",
        "handler",
        "baseline: our function, raw",
        "ratio",
        "honest floor, raw",
        "handler vs floor",
        "function vs floor",
    )
    print_table(title, rows, header)


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench attempts")
    parser.add_argument(
        "count", nargs="?", type=int, metavar="ATTEMPTS", help="attempts to seed (as --attempts)"
    )
    parser.add_argument("--attempts", type=int, default=None, help="attempts to seed (20,000)")
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--blocks", type=int, default=10, help="alternating runs per measure")
    args = parser.parse_args(argv if argv is not None else [])
    if None not in (args.count, args.attempts) and args.count != args.attempts:
        parser.error(f"{args.count:,} attempts or {args.attempts:,}?")
    attempts = next((n for n in (args.count, args.attempts) if n is not None), 20_000)
    calls = args.calls
    with bench_database() as db:
        from dev import seed

        print(f"seeding {attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=attempts, progress=False)
        people = _pick_people(db.admin_url)
        use_function_environment(db.app_url)
        existing = _existing(db.admin_url, people["org_id"], calls + 200)
        ids, warm = existing[:calls], existing[calls:]
        handler = Handler(people)
        handler.time([handler.event("GET", i, "admin", "state") for i in warm])  # warm up
        ours_fresh = _fresh_attempts(db.admin_url, people, calls)
        our_calls = _handler_calls(handler, ids, ours_fresh, calls)
        raw_fresh = _fresh_attempts(db.admin_url, people, calls)
        floor_fresh = _fresh_attempts(db.admin_url, people, calls)
        with (
            _raw_calls(db.app_url, people, ids, raw_fresh) as raw_calls,
            _floor_calls(db.app_url, people, ids, floor_fresh) as floor_calls,
        ):
            ways = {"raw": raw_calls, "floor": floor_calls, "ours": our_calls}
            samples = _interleaved(ways, calls, args.blocks)
        framework = _measure_framework(handler, ids, db.admin_url, args.blocks)
    _report(
        samples,
        framework,
        f"attempts handler over {attempts:,} seeded attempts, {calls:,} warm calls each",
    )
    print(
        "baselines: our function (the same statement the handler sends) as the app role with"
        " its context (practice_enter) in one pipeline on a raw psycopg connection; the honest"
        " floor: the plainest statement doing the same job with the same context and checks"
        " (tenant, owner, version, in progress), the same way; /health beside a raw `select 1`;"
        " 'framework only' is the handler with every database call answered from memory,"
        " beside a bare Starlette route behind Mangum."
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""Issue 4's figures: `state` (cache miss and hit), `save` and `submit` through the
attempts handler over 100,000 seeded attempts, each beside the raw psycopg round
trip of the equivalent single statement, measured in the same run.

Run: `python -m bench attempts [--attempts N] [--calls N]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_database, p50_p99, print_table, timed, use_function_environment

ROOT = Path(__file__).resolve().parents[1]

RAW_STATE = """
select id, org_id, clerk_user_id, scenario_id, assignment_id, status, version,
       answers, auto_save_data, started_at, ended_at, duration_seconds, submitted_at,
       last_activity_at, recording_path, vapi_call_id, updated_at
from scenario_attempts where id = %s and org_id = %s
"""
RAW_SAVE = """
update scenario_attempts
   set answers = %s, auto_save_data = %s, version = version + 1,
       last_activity_at = now(), updated_at = now()
 where id = %s and org_id = %s and version = 1 and status = 'in_progress'
returning id, version, updated_at
"""
RAW_SUBMIT = """
update scenario_attempts
   set status = 'completed', ended_at = coalesce(ended_at, now()), submitted_at = now(),
       duration_seconds = greatest(0, round(extract(epoch from now() - started_at)))::int,
       version = version + 1, updated_at = now()
 where id = %s and org_id = %s and status = 'in_progress'
returning id, status, version
"""


def _pick_people(admin_url: str) -> dict[str, Any]:
    """The demo org's admin and one trainee, and a scenario the trainee can use."""
    with psycopg.connect(admin_url) as conn:
        org_id, clerk_org_id = conn.execute(
            "select o.id, o.clerk_org_id from orgs o"
            " join scenario_attempts a on a.org_id = o.id"
            " group by o.id order by count(*) desc limit 1"
        ).fetchone()
        admin = conn.execute(
            "select user_id from org_members where org_id = %s and role = 'admin' limit 1",
            [org_id],
        ).fetchone()[0]
        trainee = conn.execute(
            "select user_id from org_members where org_id = %s and role = 'trainee' limit 1",
            [org_id],
        ).fetchone()[0]
        scenario = conn.execute(
            "select id from scenarios where org_id is null and is_active limit 1"
        ).fetchone()[0]
    return {
        "org_id": org_id,
        "clerk_org_id": clerk_org_id,
        "admin": admin,
        "trainee": trainee,
        "scenario": scenario,
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


def _claims(people: dict[str, Any], user: str, role: str) -> dict[str, str]:
    org = {"id": people["clerk_org_id"], "rol": role}
    return {"sub": user, "v": "2", "o": json.dumps(org)}


def _existing(admin_url: str, org_id: Any, count: int) -> list[uuid.UUID]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "select id from scenario_attempts where org_id = %s limit %s", [org_id, count]
        ).fetchall()
    return [r[0] for r in rows]


def _measure_handler(
    people: dict[str, Any], ids: list, to_save: list, warm: list, calls: int
) -> dict[str, list[float]]:
    """state miss, state hit, save and submit through the attempts handler."""
    from dev.invoke import LambdaContext
    from functions.attempts import app
    from tests.support import http_event

    app.db.pool.wait(timeout=10)
    context = LambdaContext()
    admin = _claims(people, people["admin"], "admin")
    trainee = _claims(people, people["trainee"], "trainee")

    def event(method: str, attempt_id: Any, claims: dict, action: str, body: Any = None) -> dict:
        return http_event(
            method,
            f"/attempts/{attempt_id}",
            claims=claims,
            query={"action": action},
            body=body,
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": str(attempt_id)},
        )

    def call(events: list[dict]) -> list[float]:
        # Events are built before the clock starts: only the handler is timed.
        def one(i: int) -> None:
            response = app.handler(events[i], context)
            assert response["statusCode"] == 200, response

        return timed(len(events), one)

    for attempt_id in warm:  # the principal lookup, the pool, pydantic validators
        call([event("GET", attempt_id, admin, "state")])
    body = {"answers": {"q1": "yes"}, "auto_save_data": {"progress": 40}, "expected_version": 1}
    states = [event("GET", i, admin, "state") for i in ids]
    return {
        "miss": call(states),
        "hit": call(states),
        "save": call([event("PATCH", i, trainee, "save", body) for i in to_save]),
        "submit": call([event("POST", i, trainee, "submit", {}) for i in to_save]),
    }


def _measure_raw(
    admin_url: str, org: Any, ids: list, save_ids: list, submit_ids: list, calls: int
) -> dict[str, list[float]]:
    """The same statements, one plain psycopg round trip each, as the owner."""
    answers = psycopg.types.json.Jsonb({"q1": "yes"})
    autosave = psycopg.types.json.Jsonb({"progress": 40})
    with psycopg.connect(admin_url, autocommit=True) as raw:
        return {
            "state": timed(calls, lambda i: raw.execute(RAW_STATE, [ids[i], org]).fetchone()),
            "save": timed(
                calls,
                lambda i: raw.execute(RAW_SAVE, [answers, autosave, save_ids[i], org]).fetchone(),
            ),
            "submit": timed(
                calls, lambda i: raw.execute(RAW_SUBMIT, [submit_ids[i], org]).fetchone()
            ),
        }


SET_CONTEXT = """
select set_config('app.org_id', %s, true), set_config('app.user_id', %s, true),
       set_config('app.role', %s, true)
"""


def _measure_raw_rls(
    app_url: str, people: dict, ids: list, save_ids: list, submit_ids: list, calls: int
) -> dict[str, list[float]]:
    """The same statements as the app role with their RLS context, pipelined into
    one round trip: what the handler sends, without the handler."""
    org = people["org_id"]
    admin = [str(org), people["admin"], "admin"]
    trainee = [str(org), people["trainee"], "trainee"]
    answers = psycopg.types.json.Jsonb({"q1": "yes"})
    autosave = psycopg.types.json.Jsonb({"progress": 40})
    with psycopg.connect(app_url, autocommit=True) as conn:

        def piped(context: list, sql: str, params: list) -> None:
            with conn.pipeline():
                conn.execute(SET_CONTEXT, context)
                cursor = conn.execute(sql, params)
            cursor.fetchone()

        return {
            "state": timed(calls, lambda i: piped(admin, RAW_STATE, [ids[i], org])),
            "save": timed(
                calls, lambda i: piped(trainee, RAW_SAVE, [answers, autosave, save_ids[i], org])
            ),
            "submit": timed(calls, lambda i: piped(trainee, RAW_SUBMIT, [submit_ids[i], org])),
        }


def _report(ours: dict, raw: dict, rls: dict, title: str) -> None:
    rows = []
    targets = {"state (cache miss)": 3.0, "save": 4.0}
    for name, mine, key in [
        ("state (cache miss)", ours["miss"], "state"),
        ("state (cache hit)", ours["hit"], "state"),
        ("save", ours["save"], "save"),
        ("submit", ours["submit"], "submit"),
    ]:
        for label, index in (("p50", 0), ("p99", 1)):
            figure = p50_p99(mine)[index]
            base, piped = p50_p99(raw[key])[index], p50_p99(rls[key])[index]
            target = f" (target ≤{targets[name]:.0f}x)" if name in targets and index == 0 else ""
            rows.append(
                (
                    f"{name} {label}",
                    f"{figure:.3f} ms",
                    f"{base:.3f} ms",
                    f"{figure / base:.2f}x{target}",
                    f"{piped:.3f} ms",
                    f"{figure / piped:.2f}x",
                )
            )
    header = ("measure", "figure", "raw statement", "ratio", "raw + RLS context", "ratio")
    print_table(title, rows, header)


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench attempts")
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1_000)
    args = parser.parse_args(argv if argv is not None else [])
    calls = args.calls
    with bench_database() as db:
        from dev import seed

        print(f"seeding {args.attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=args.attempts, progress=False)
        people = _pick_people(db.admin_url)
        use_function_environment(db.app_url)
        existing = _existing(db.admin_url, people["org_id"], calls + 200)
        ids, warm = existing[:calls], existing[calls:]
        ours = _measure_handler(
            people, ids, _fresh_attempts(db.admin_url, people, calls), warm, calls
        )
        prepared = _with_prepared_statements(db.app_url, people, ids, warm, calls, db.admin_url)
        raw = _measure_raw(
            db.admin_url,
            people["org_id"],
            ids,
            _fresh_attempts(db.admin_url, people, calls),
            _fresh_attempts(db.admin_url, people, calls),
            calls,
        )
        rls = _measure_raw_rls(
            db.app_url,
            people,
            ids,
            _fresh_attempts(db.admin_url, people, calls),
            _fresh_attempts(db.admin_url, people, calls),
            calls,
        )
    scale = f"over {args.attempts:,} seeded attempts, {calls:,} warm calls each"
    _report(ours, raw, rls, f"attempts handler {scale}, default settings (prepared statements off)")
    _report(prepared, raw, rls, f"attempts handler {scale}, PRACTICE_DB_PREPARE_THRESHOLD=0")
    print(
        "baselines: 'raw statement' is the statement alone on a plain psycopg connection as the"
        " owner (no RLS; psycopg's default prepare threshold); 'raw + RLS context' is the same"
        " statement as the app role with its set_config context in one pipeline."
    )
    print("targets: state miss p50 ≤ 3x raw, cache hit p50 ≤ 0.3 ms, save p50 ≤ 4x raw")


def _with_prepared_statements(
    app_url: str, people: dict, ids: list, warm: list, calls: int, admin_url: str
) -> dict[str, list[float]]:
    """The same measurements with server-side prepared statements (safe behind
    PgBouncer ≥ 1.21 and direct connections): the function's service gets a
    pool with prepare_threshold=0 and an empty cache."""
    from functions.attempts import app
    from practice.db import Database

    settings = app.settings.model_copy(update={"db_prepare_threshold": 0})
    database = Database(settings, conninfo=app_url)
    database.open()
    database.pool.wait(timeout=10)
    app.attempts.db, original = database, app.attempts.db
    app.cache.clear()
    try:
        return _measure_handler(people, ids, _fresh_attempts(admin_url, people, calls), warm, calls)
    finally:
        app.attempts.db = original
        database.close()


if __name__ == "__main__":
    main(sys.argv[1:])

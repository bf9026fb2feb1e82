"""The webhooks' figures: a signed Vapi end-of-call report through the webhooks
handler (verified, persisted, processed: the attempt ends through
attempt_submit and is scored), beside, in the same run and alternating:

- the raw insert of the event row (one INSERT of the same payload, autocommit,
  on a raw connection as the table owner): the floor of "persist";
- the same persist and process in raw SQL on a raw connection as the functions'
  login (system context, insert, the attempt lookup, the org's context, the
  report's function, the outcome; one transaction): the floor of the whole.

Each call ends a fresh in-progress attempt, so every call does the full work.

Run: `python -m bench webhooks [--calls N] [--attempts N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.attempts import _fresh_attempts, _pick_people
from bench.common import (
    alternating,
    bench_database,
    p50_p99,
    print_table,
    use_function_environment,
)

RAW_INSERT = """
insert into webhook_events (source, event_id, event_type, subject, occurred_ms, payload)
values ('vapi', %s, 'end-of-call-report', %s, %s, %s)
"""


def _report(call_id: str, attempt_id: Any) -> dict[str, Any]:
    t0 = 1_790_000_000_000
    return {
        "message": {
            "type": "end-of-call-report",
            "timestamp": t0 + 200_000,
            "call": {
                "id": call_id,
                "assistantOverrides": {"metadata": {"attemptId": str(attempt_id)}},
            },
            "endedReason": "customer-ended-call",
            "startedAt": "2026-09-21T14:10:00Z",
            "endedAt": "2026-09-21T14:13:03Z",
            "artifact": {
                "transcript": "AI: Hello, this is Sam.\nUser: Hi Sam. " * 40,
                "messages": [
                    {"role": "bot" if i % 2 else "user", "message": f"line {i}",
                     "time": t0 + i * 3000, "endTime": t0 + i * 3000 + 2500}
                    for i in range(60)
                ],
                "recordingUrl": f"https://storage.vapi.ai/{call_id}-mono.wav",
                "stereoRecordingUrl": f"https://storage.vapi.ai/{call_id}-stereo.wav",
            },
            "analysis": {
                "summary": "Warm opening; ask about budget earlier.",
                "structuredData": {"score": 78, "discovery": 3},
                "successEvaluation": "true",
            },
        }
    }  # fmt: skip


def _raw_persist_and_process(
    login: psycopg.Connection, key: str, body: str, attempt_hint: Any
) -> None:
    """What the handler does, in raw SQL on a raw connection (the floor)."""
    from practice.webhooks import vapi

    payload = json.loads(body)
    message = payload["message"]
    call_id = message["call"]["id"]
    with login.transaction():
        login.execute("select practice_enter(null, 'system:bench', 'system', '10s')")
        event_id = login.execute(
            "insert into webhook_events (source, event_id, event_type, subject, payload)"
            " values ('vapi', %s, 'end-of-call-report', %s, %s) returning id",
            [f"{key}:end-of-call-report", call_id, Jsonb(payload)],
        ).fetchone()[0]
    with login.transaction():
        login.execute("select practice_enter(null, 'system:bench', 'system', '10s')")
        login.execute("select 1 from webhook_events where id = %s for update", [event_id])
        attempt_id, org_id = login.execute(
            "select attempt_id, org_id from webhook_find_attempt(%s, null, %s)",
            [attempt_hint, call_id],
        ).fetchone()
        login.execute("select practice_enter(%s, 'system:bench', 'system', '10s')", [org_id])
        login.execute(
            "select * from vapi_apply_report(%s, %s, 'system:bench', %s)",
            [org_id, attempt_id, Jsonb(vapi.report_of(message, call_id))],
        )
        login.execute(
            "update webhook_events set outcome = 'processed', processed_at = now(),"
            " attempts = attempts + 1, next_attempt_at = null where id = %s",
            [event_id],
        )


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench webhooks")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--attempts", type=int, default=5_000)
    args = parser.parse_args(argv if argv is not None else [])
    with bench_database("practice_bench_webhooks") as db:
        from dev import seed, signing

        print(f"seeding {args.attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=args.attempts, progress=False)
        people = _pick_people(db.admin_url)
        use_function_environment(db.app_url)
        os.environ.update(signing.ENVIRONMENT)
        from dev.invoke import LambdaContext
        from functions.webhooks import app
        from tests.support import http_event

        app.db.pool.wait(timeout=10)
        warm = 20
        attempts = _fresh_attempts(db.admin_url, people, 2 * (args.calls + warm))
        handler_attempts, raw_attempts = (
            attempts[: args.calls + warm],
            attempts[args.calls + warm :],
        )
        tag = uuid.uuid4().hex[:8]

        def body(kind: str, i: int, attempt_id: Any) -> str:
            return signing.body_text(_report(f"call_{kind}_{tag}_{i}", attempt_id))

        handler_events = [
            http_event(
                "POST",
                "/webhooks/vapi",
                body=body("h", i, attempt),
                headers=signing.vapi_secret_headers(),
            )
            for i, attempt in enumerate(handler_attempts)
        ]
        raw_bodies = [body("r", i, attempt) for i, attempt in enumerate(raw_attempts)]
        insert_bodies = [body("i", i, uuid.uuid4()) for i in range(args.calls + warm)]

        def through_handler(i: int) -> None:
            response = app.handler(handler_events[i], LambdaContext())
            assert response["statusCode"] == 200, response
            assert '"processed"' in response["body"], response

        owner = psycopg.connect(db.admin_url, autocommit=True)
        login = psycopg.connect(db.app_url, autocommit=False)

        def raw_insert(i: int) -> None:
            document = Jsonb(json.loads(insert_bodies[i]))
            owner.execute(RAW_INSERT, [f"call_i_{tag}_{i}:end-of-call-report", "c", 1, document])

        def raw_persist_and_process(i: int) -> None:
            _raw_persist_and_process(login, f"call_r_{tag}_{i}", raw_bodies[i], raw_attempts[i])

        ways = {
            "handler": through_handler,
            "raw insert": raw_insert,
            "raw persist + process": raw_persist_and_process,
        }
        for i in range(warm):
            for way in ways.values():
                way(i)
        shifted = {name: (lambda i, w=way: w(i + warm)) for name, way in ways.items()}
        samples = alternating(shifted, args.calls, blocks=10)
        owner.close()
        login.close()

        hp50, hp99 = p50_p99(samples["handler"])
        ip50, ip99 = p50_p99(samples["raw insert"])
        rp50, rp99 = p50_p99(samples["raw persist + process"])

        def row(label: str, figure: float, name: str, base: float) -> tuple[str, ...]:
            return (label, f"{figure:.2f} ms", f"{name} {base:.2f} ms", f"{figure / base:.1f}x")

        print_table(
            f"signed end-of-call report, persisted and processed ({args.calls} calls,"
            f" {args.attempts:,} seeded attempts)",
            [
                row("handler p50", hp50, "raw insert", ip50),
                row("handler p99", hp99, "raw insert", ip99),
                row("handler p50", hp50, "raw persist+process", rp50),
                row("handler p99", hp99, "raw persist+process", rp99),
            ],
        )
        app.db.close()

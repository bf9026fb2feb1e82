"""`mixed_reads` of 100 (states, infos and scenario statistics of the trainee's
attempts, mixed) through the batch handler, beside its own statement on a raw
connection (app role, RLS context, one pipeline: the floor) and the same 100
reads as single calls through the attempts handler with a cold cache.

Run: `python -m bench mixed [--attempts N] [--rounds N]`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from bench.attempts import _claims
from bench.batch import SET_CONTEXT, RunCounter, _events, seeded_functions
from bench.common import bench_database, p50_p99, print_table, timed

ITEMS = 100
KINDS = ("state", "info", "stats")


def _samples(admin_url: str, people: dict[str, Any], rounds: int) -> list[list[tuple[str, str]]]:
    """Per round, 100 (kind, attempt) reads over a fresh random sample of the
    trainee's attempts (34 attempts, each read up to three ways)."""
    with psycopg.connect(admin_url) as conn:
        out = []
        for _ in range(rounds):
            ids = [
                str(r[0])
                for r in conn.execute(
                    "select id from scenario_attempts where org_id = %s and clerk_user_id = %s"
                    " order by random() limit 34",
                    [people["org_id"], people["trainee"]],
                )
            ]
            out.append([(KINDS[n % 3], ids[n // 3 % len(ids)]) for n in range(ITEMS)])
        return out


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench mixed")
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv if argv is not None else [])
    rounds = args.rounds
    with bench_database("practice_bench_mixed") as db:
        people, attempts_app, batch_app = seeded_functions(db, args.attempts)
        from dev.invoke import LambdaContext
        from practice.attempts.service import MIXED_READS
        from tests.support import http_event

        make = _events(people)

        def run(handler: Any, event: dict) -> None:
            assert handler(event, LambdaContext())["statusCode"] == 200

        def batch_event(reads: list[tuple[str, str]]) -> dict:
            return make["batch"]("mixed_reads", [{"type": k, "attempt_id": i} for k, i in reads])

        trainee = _claims(people, people["trainee"], "trainee")

        def single_event(kind: str, attempt_id: str) -> dict:
            if kind != "stats":
                return make["single"]("GET", attempt_id, kind)
            return http_event(
                "GET",
                f"/attempts/{attempt_id}/stats",
                claims=trainee,
                query={"type": "stats"},
                route="/attempts/{attemptId}/stats",
                path_parameters={"attemptId": attempt_id},
            )

        warm, *samples = _samples(db.admin_url, people, rounds + 1)
        for _ in range(3):  # the principal, the pools, the validators: not timed
            run(batch_app.handler, batch_event(warm))
            for kind, attempt_id in warm[:3]:
                run(attempts_app.handler, single_event(kind, attempt_id))
        counter = RunCounter(attempts_app.db, batch_app.db)

        events = [batch_event(s) for s in samples]
        before = counter.count
        mixed = timed(rounds, lambda i: run(batch_app.handler, events[i]))
        mixed_tx = counter.per(rounds, before)

        single_rounds = max(3, rounds // 4)
        singles = [[single_event(k, i) for k, i in s] for s in samples[:single_rounds]]

        def one_by_one(r: int) -> None:
            attempts_app.cache.clear_org(people["org_id"])
            for event in singles[r]:
                run(attempts_app.handler, event)

        before = counter.count
        single = timed(single_rounds, one_by_one)
        single_tx = counter.per(single_rounds, before)

        floor = _floor(db.app_url, people, samples, MIXED_READS)
    _report(mixed, floor, single, (mixed_tx, single_tx), args.attempts, rounds)


def _floor(
    app_url: str, people: dict[str, Any], samples: list[list[tuple[str, str]]], sql: str
) -> list[float]:
    """The statement itself on a raw connection as the app role, its RLS context
    and the statement in one pipeline."""
    context = [str(people["org_id"]), people["trainee"], "trainee"]
    with psycopg.connect(app_url, autocommit=True) as app:

        def piped(i: int) -> None:
            ids = {k: [a for kind, a in samples[i] if kind == k] for k in KINDS}
            params = {"org_id": people["org_id"], "user_id": people["trainee"]}
            params |= {"state_ids": ids["state"], "ids": ids["info"], "stats_ids": ids["stats"]}
            with app.pipeline():
                app.execute(SET_CONTEXT, context)
                cursor = app.execute(sql, params)
            assert cursor.fetchall()

        return timed(len(samples), piped)


def _report(
    mixed: list[float],
    floor: list[float],
    single: list[float],
    trips: tuple[float, float],
    attempts: int,
    rounds: int,
) -> None:
    def ms(samples: list[float]) -> str:
        p50, p99 = p50_p99(samples)
        return f"{p50:.2f} ms (p99 {p99:.2f})"

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{p50_p99(a)[0] / p50_p99(b)[0]:.2f}x"

    print_table(
        f"mixed_reads of {ITEMS}, {attempts:,} seeded attempts, {rounds} rounds",
        [
            ("mixed_reads (handler)", ms(mixed),
             f"its statement, app role + RLS context, raw: {ms(floor)}", ratio(mixed, floor)),
            ("mixed_reads (handler)", ms(mixed),
             f"100 single state/info/stats calls (handler, cold cache): {ms(single)}",
             f"{ratio(mixed, single)} wall; round trips {trips[0]:.0f} vs {trips[1]:.0f}"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

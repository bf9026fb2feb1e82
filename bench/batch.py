"""The batch operations' figures, in one run over seeded attempts:

- 100 saves in one `batch_save` through the batch handler, beside the best single
  `jsonb_to_recordset` update of 100 rows on a raw connection (target ≤ 1.2x);
- the same 100 saves as 100 `PATCH …?action=save` calls through the attempts
  handler: round trips and wall time (the batch is promised "up to 80 % fewer
  database calls");
- `multiple_states` of 100 ids beside 100 single `state` reads.

Round trips are counted, not assumed: every ``Database.run`` of either
function (one pipeline: context, statements, commit) is counted while it runs.

Run: `python -m bench batch [--attempts N] [--rounds N]`; at the scale of the
README's figures:
`make bench BENCH_ARGS="batch --attempts 100000"` (the default, 20,000, keeps
`make bench` short).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from types import ModuleType
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.attempts import _claims, _fresh_attempts, _pick_people
from bench.common import bench_database, p50_p99, print_table, timed, use_function_environment

ITEMS = 100

# The best one statement for 100 conditional saves: no locking CTE, no verdicts.
RAW_BATCH_SAVE = """
update scenario_attempts a
   set answers = coalesce(i.answers, a.answers),
       auto_save_data = coalesce(i.auto_save_data, a.auto_save_data),
       version = a.version + 1, last_activity_at = now(), updated_at = now()
  from jsonb_to_recordset(%s)
       as i(attempt_id uuid, expected_version int, answers jsonb, auto_save_data jsonb)
 where a.id = i.attempt_id and a.org_id = %s and a.version = i.expected_version
   and a.status = 'in_progress'
returning a.id, a.version, a.updated_at
"""


class RunCounter:
    """Counts the transactions (``Database.run`` calls) of the given databases."""

    def __init__(self, *databases: Any) -> None:
        self.count = 0
        for database in databases:
            original = database.run

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.count += 1
                return _original(*args, **kwargs)

            database.run = counted

    def per(self, requests: int, since: int) -> float:
        """Transactions per request since the count was ``since``."""
        return (self.count - since) / requests


def _events(people: dict[str, Any]) -> dict[str, Any]:
    from tests.support import http_event

    trainee = _claims(people, people["trainee"], "trainee")

    def batch(operation: str, data: list) -> dict:
        body = {"operation": operation, "data": data}
        return http_event("POST", "/attempts/batch", claims=trainee, body=body)

    def single(method: str, attempt_id: Any, action: str, body: Any = None) -> dict:
        return http_event(
            method,
            f"/attempts/{attempt_id}",
            claims=trainee,
            query={"action": action},
            body=body,
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": str(attempt_id)},
        )

    return {"batch": batch, "single": single}


def _saves(ids: list) -> list[dict[str, Any]]:
    return [
        {"attempt_id": str(i), "answers": {"q1": "yes"}, "auto_save_data": {"p": 40},
         "expected_version": 1}
        for i in ids
    ]  # fmt: skip


def _warm_up(run: Any, make: dict, fresh: Any, attempts: Any, batch: Any) -> None:
    # The principal lookup, the pools, the validators: none of it timed.
    for _ in range(3):
        run(batch, make["batch"]("batch_save", _saves(fresh())))
        warm = fresh()
        run(batch, make["batch"]("multiple_states", [str(i) for i in warm]))
        run(attempts, make["single"]("GET", warm[0], "state"))
        body = {"answers": {"q1": "yes"}, "expected_version": 1}
        run(attempts, make["single"]("PATCH", warm[1], "save", body))


def seeded_functions(db: Any, attempts: int) -> tuple[dict[str, Any], ModuleType, ModuleType]:
    """Seed ``attempts`` of demo data, point the attempts and batch functions at the
    database and wait for their pools: the people to act as, and both modules."""
    from dev import seed

    print(f"seeding {attempts:,} attempts …", file=sys.stderr)
    seed.load_demo_data(db.admin_url, attempts=attempts, progress=False)
    people = _pick_people(db.admin_url)
    use_function_environment(db.app_url)
    from functions.attempts import app as attempts_app
    from functions.batch import app as batch_app

    attempts_app.db.pool.wait(timeout=10)
    batch_app.db.pool.wait(timeout=10)
    return people, attempts_app, batch_app


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench batch")
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv if argv is not None else [])
    rounds = args.rounds
    with bench_database("practice_bench_batch") as db:
        people, attempts_app, batch_app = seeded_functions(db, args.attempts)
        from dev.invoke import LambdaContext

        make = _events(people)

        def fresh() -> list[uuid.UUID]:
            return _fresh_attempts(db.admin_url, people, ITEMS)

        def run(handler: Any, event: dict) -> dict:
            # A context per invocation, as Lambda gives: its remaining time is the budget.
            response = handler(event, LambdaContext())
            assert response["statusCode"] == 200, response
            return response

        _warm_up(run, make, fresh, attempts_app.handler, batch_app.handler)
        counter = RunCounter(attempts_app.db, batch_app.db)

        # 1. batch_save of 100 through the handler.
        batch_events = [make["batch"]("batch_save", _saves(fresh())) for _ in range(rounds)]
        before = counter.count
        batch_save = timed(rounds, lambda i: run(batch_app.handler, batch_events[i]))
        batch_save_tx = counter.per(rounds, before)

        # 2. the best single statement on a raw connection, and the floors around it.
        raw = _measure_raw(db, people, fresh, rounds)

        # 3. the same 100 saves as 100 PATCH calls through the attempts handler.
        body = {"answers": {"q1": "yes"}, "auto_save_data": {"p": 40}, "expected_version": 1}
        patch_rounds = max(3, rounds // 5)
        patch_events = [
            [make["single"]("PATCH", i, "save", body) for i in fresh()] for _ in range(patch_rounds)
        ]
        before = counter.count
        patches = timed(
            patch_rounds,
            lambda r: [run(attempts_app.handler, event) for event in patch_events[r]],
        )
        patches_tx = counter.per(patch_rounds, before)

        # 4. multiple_states of 100 vs 100 single state reads.
        read_ids = [[str(i) for i in fresh()] for _ in range(rounds)]
        state_events = [make["batch"]("multiple_states", ids) for ids in read_ids]
        before = counter.count
        states = timed(rounds, lambda i: run(batch_app.handler, state_events[i]))
        states_tx = counter.per(rounds, before)
        single_reads = [
            [make["single"]("GET", i, "state") for i in ids] for ids in read_ids[:patch_rounds]
        ]
        before = counter.count
        reads = timed(
            patch_rounds, lambda r: [run(attempts_app.handler, e) for e in single_reads[r]]
        )
        reads_tx = counter.per(patch_rounds, before)

    figures = {
        "batch_save": batch_save,
        "patches": patches,
        "states": states,
        "reads": reads,
        **raw,
    }
    trips = {"batch_save": batch_save_tx, "patches": patches_tx, "states": states_tx}
    trips["reads"] = reads_tx
    _report(figures, trips, f"{ITEMS} items, {args.attempts:,} seeded attempts, {rounds} rounds")


def _measure_raw(
    db: Any, people: dict[str, Any], fresh: Any, rounds: int
) -> dict[str, list[float]]:
    """The best one statement for 100 saves (owner, autocommit); the batch's own
    statement (SAVE_DRAFTS) as the app role with its RLS context in one pipeline;
    100 autocommit single updates."""
    from practice.attempts.service import SAVE_DRAFTS

    org = people["org_id"]
    raw_sets = [Jsonb(_saves(fresh())) for _ in range(rounds)]
    ours = [
        Jsonb([item | {"ord": n} for n, item in enumerate(_saves(fresh()))]) for _ in range(rounds)
    ]
    singles = [fresh() for _ in range(max(3, rounds // 5))]
    context = [str(org), people["trainee"], "trainee"]
    with psycopg.connect(db.admin_url, autocommit=True) as raw:
        best = timed(
            rounds,
            lambda i: raw.execute(RAW_BATCH_SAVE, [raw_sets[i], org]).fetchall(),
        )

        def one_by_one(i: int) -> None:
            for attempt_id in singles[i]:
                raw.execute(
                    "update scenario_attempts set answers = %s, version = version + 1,"
                    " updated_at = now() where id = %s and org_id = %s and version = 1",
                    [Jsonb({"q1": "yes"}), attempt_id, org],
                )

        hundred = timed(len(singles), one_by_one)
    with psycopg.connect(db.app_url, autocommit=True) as app:

        def piped(i: int) -> None:
            with app.pipeline():
                app.execute(SET_CONTEXT, context)
                cursor = app.execute(
                    SAVE_DRAFTS, {"org_id": org, "user_id": people["trainee"], "items": ours[i]}
                )
            assert len(cursor.fetchall()) == ITEMS

        statement = timed(rounds, piped)
    return {"raw_best": best, "raw_100": hundred, "statement": statement}


SET_CONTEXT = """
select set_config('app.org_id', %s, true), set_config('app.user_id', %s, true),
       set_config('app.role', %s, true)
"""


def _report(figures: dict[str, list[float]], trips: dict[str, float], scale: str) -> None:
    def ms(name: str) -> str:
        p50, p99 = p50_p99(figures[name])
        return f"{p50:.2f} ms (p99 {p99:.2f})"

    def ratio(a: str, b: str) -> str:
        return f"{p50_p99(figures[a])[0] / p50_p99(figures[b])[0]:.2f}x"

    fewer = 100 * (1 - trips["batch_save"] / trips["patches"])
    print_table(
        f"batch handler, {scale}",
        [
            ("batch_save (handler)", ms("batch_save"),
             f"best jsonb_to_recordset update, raw: {ms('raw_best')}",
             f"{ratio('batch_save', 'raw_best')} (target ≤ 1.2x)"),
            ("batch_save (handler)", ms("batch_save"),
             f"its statement, app role + RLS context, raw: {ms('statement')}",
             ratio("batch_save", "statement")),
            ("batch_save (handler)", ms("batch_save"),
             f"100 autocommit updates, raw: {ms('raw_100')}", ratio("batch_save", "raw_100")),
            ("batch_save (handler)", ms("batch_save"),
             f"100 PATCH ?action=save (handler): {ms('patches')}",
             f"{ratio('batch_save', 'patches')} wall; round trips {trips['batch_save']:.0f}"
             f" vs {trips['patches']:.0f} ({fewer:.0f} % fewer)"),
            ("multiple_states (handler)", ms("states"),
             f"100 GET ?action=state (handler): {ms('reads')}",
             f"{ratio('states', 'reads')} wall; round trips {trips['states']:.0f}"
             f" vs {trips['reads']:.0f}"),
        ],
    )  # fmt: skip
    print(
        "round trips: Database.run calls per request, counted; each is one pipeline"
        " (context + statement + commit). Statements per batch: 1 (plus the context)."
    )


if __name__ == "__main__":
    main(sys.argv[1:])

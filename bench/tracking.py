"""The tracking routes on a cache miss against their raw statements, in one run:
each of ``GET /users/{userId}/attempts``, ``best-attempts``, ``recent-attempts``,
``scenarios/{scenarioId}/improvement`` and ``…/comparison`` through the attempts
handler, the member's cache entry dropped before every call (the drop, a few
microseconds, is inside the timing), beside the same SQL function sent by a raw
psycopg connection as the app role with its context (practice_enter) in one
pipeline, alternating in blocks over the same calls. A cache hit through the
handler is printed too, and, beside the history page, 0021's row function sent
raw (the page's floor before 0029 rendered it in SQL; its rows' documents are
decoded by psycopg, as the service decoded them then).

The member is the trainee with the most completed attempts of the largest org
(a heavy history, not a typical one), on the scenario they practised most.

Run: ``python -m bench tracking [N] [--calls N] [--blocks N]`` (N attempts
seeded, 1,000,000 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.common import alternating, bench_database, p50_p99, print_table, use_function_environment

DEFAULT_ATTEMPTS = 1_000_000
ROUTES = ("attempts", "best-attempts", "recent-attempts", "improvement", "comparison")


def _pick(admin_url: str) -> dict[str, Any]:
    """The largest org's trainee with the most completed attempts, and their
    most practised scenario."""
    with psycopg.connect(admin_url) as conn:
        org_id, clerk_org_id = conn.execute(
            "select o.id, o.clerk_org_id from orgs o join scenario_attempts a on a.org_id = o.id"
            " group by o.id order by count(*) desc limit 1"
        ).fetchone()
        user, scenario, on_scenario = conn.execute(
            "select a.clerk_user_id, a.scenario_id, count(*) over (partition by a.clerk_user_id)"
            " from scenario_attempts a join org_members m"
            "   on m.org_id = a.org_id and m.user_id = a.clerk_user_id and m.role = 'trainee'"
            " where a.org_id = %s and a.status = 'completed'"
            " group by a.clerk_user_id, a.scenario_id"
            " order by count(*) over (partition by a.clerk_user_id) desc, count(*) desc limit 1",
            [org_id],
        ).fetchone()
        completed = conn.execute(
            "select count(*) from scenario_attempts where org_id = %s and clerk_user_id = %s"
            " and status = 'completed'",
            [org_id, user],
        ).fetchone()[0]
        total = conn.execute("select count(*) from scenario_attempts").fetchone()[0]
    return {
        "org_id": org_id,
        "clerk_org_id": clerk_org_id,
        "user": user,
        "scenario": scenario,
        "completed": completed,
        "scenarios": on_scenario,
        "total": total,
    }


def _statements(who: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each route's SQL and parameters, as ``TrackingService`` sends them."""
    from practice.tracking.service import BEST, COMPARISON, HISTORY, IMPROVEMENT, RECENT

    base = {"org_id": who["org_id"], "member": who["user"]}
    page = {"scenario_id": None, "limit": 50, "before_at": None, "before_id": None}
    return {
        "attempts": (HISTORY, base | page),
        "best-attempts": (BEST, base),
        "recent-attempts": (RECENT, base | {"scenario_id": None, "limit": 5}),
        "improvement": (IMPROVEMENT, base | {"scenario_id": who["scenario"], "days_back": 90}),
        "comparison": (COMPARISON, base | {"scenario_id": who["scenario"]}),
    }


# 0021's history function, as the service sent it before 0029.
ROWS_0021 = (
    "select * from get_user_scenario_attempts(%(org_id)s, %(member)s, %(scenario_id)s,"
    " %(limit)s, %(before_at)s, %(before_id)s)"
)


def _events(who: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from tests.support import http_event

    claims = {
        "sub": who["user"],
        "v": "2",
        "o": json.dumps({"id": who["clerk_org_id"], "rol": "trainee"}),
    }
    scenario = who["scenario"]
    paths = {
        "attempts": ("/users/me/attempts", "/users/{userId}/attempts"),
        "best-attempts": ("/users/me/best-attempts", "/users/{userId}/best-attempts"),
        "recent-attempts": ("/users/me/recent-attempts", "/users/{userId}/recent-attempts"),
        "improvement": (
            f"/users/me/scenarios/{scenario}/improvement",
            "/users/{userId}/scenarios/{scenarioId}/improvement",
        ),
        "comparison": (
            f"/users/me/scenarios/{scenario}/comparison",
            "/users/{userId}/scenarios/{scenarioId}/comparison",
        ),
    }
    params = {"userId": "me", "scenarioId": str(scenario)}
    return {
        name: http_event(
            "GET",
            path,
            claims=claims,
            route=route,
            path_parameters={k: v for k, v in params.items() if "{" + k + "}" in route},
        )
        for name, (path, route) in paths.items()
    }


def _handler_calls(who: dict[str, Any], *, miss: bool) -> dict[str, Callable[[int], None]]:
    from dev.invoke import LambdaContext
    from functions.attempts import app
    from practice.attempts.service import member_tag

    app.db.pool.wait(timeout=10)
    tag = member_tag(who["user"])

    def caller(event: dict[str, Any]) -> Callable[[int], None]:
        def one(_i: int) -> None:
            if miss:
                app.cache.invalidate_tag(who["org_id"], tag)
            response = app.handler(event, LambdaContext(timeout=900.0))
            assert response["statusCode"] == 200, response

        return one

    return {name: caller(event) for name, event in _events(who).items()}


@contextmanager
def _raw_calls(app_url: str, who: dict[str, Any]) -> Iterator[dict[str, Callable[[int], None]]]:
    from practice.core.db import ENTER

    context = {
        "org_id": who["org_id"],
        "user_id": who["user"],
        "role": "trainee",
        "statement_timeout": "10s",
    }
    with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:

        def caller(sql: str, params: dict[str, Any]) -> Callable[[int], None]:
            def one(_i: int) -> None:
                with conn.pipeline():
                    conn.execute(ENTER, context)
                    cursor = conn.execute(sql, params)
                assert cursor.fetchall(), sql

            return one

        statements = _statements(who)
        statements["attempts-0021"] = (ROWS_0021, statements["attempts"][1])
        yield {name: caller(*statement) for name, statement in statements.items()}


def main(argv: list[str] | None = None) -> None:
    """Seed, warm up, measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench tracking")
    parser.add_argument("attempts", nargs="?", type=int, default=DEFAULT_ATTEMPTS)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=10, help="alternating runs per measure")
    args = parser.parse_args(argv if argv is not None else [])
    with bench_database("practice_bench_tracking") as db:
        from dev import seed

        print(f"seeding {args.attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=args.attempts, progress=False)
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            conn.execute("analyze")
        who = _pick(db.admin_url)
        use_function_environment(db.app_url)
        ours = _handler_calls(who, miss=True)
        hits = _handler_calls(who, miss=False)
        rows = []
        old_floor = ""
        load = [os.getloadavg()[0]]
        with _raw_calls(db.app_url, who) as raw:
            for name in ROUTES:
                ways = {"ours": ours[name], "raw": raw[name], "hit": hits[name]}
                if name == "attempts":
                    ways["0021"] = raw["attempts-0021"]
                for way in ways.values():  # warm up
                    for i in range(20):
                        way(i)
                samples = alternating(ways, args.calls, args.blocks)
                load.append(os.getloadavg()[0])
                if "0021" in samples:
                    f50, f99 = p50_p99(samples["0021"])
                    old_floor = f"{f50:.3f} / {f99:.3f} ms"
                (o50, o99), (r50, r99) = p50_p99(samples["ours"]), p50_p99(samples["raw"])
                h50, _ = p50_p99(samples["hit"])
                rows.append(
                    (
                        name,
                        f"{o50:.3f} / {o99:.3f} ms",
                        f"{r50:.3f} / {r99:.3f} ms",
                        f"{o50 / r50:.2f}x",
                        f"{h50:.3f} ms",
                        "yes" if o50 <= 2.0 else "NO",
                    )
                )
    header = (
        "route (GET /users/me/…)",
        "handler, cache miss p50 / p99",
        "raw statement p50 / p99",
        "p50 ratio",
        "handler, cache hit p50",
        "miss p50 ≤ 2 ms",
    )
    title = (
        f"tracking over {who['total']:,} attempts; the member has {who['completed']:,} completed"
        f" ({who['scenarios']} scenarios); {args.calls:,} calls each"
    )
    print_table(title, rows, header)
    print(
        f"attempts: 0021's row function raw (the floor before 0029), same run: {old_floor}."
        f" Load average (1 min) while measuring: {min(load):.2f} to {max(load):.2f}."
    )
    print(
        "baseline: the same SQL function the handler sends, as the app role with its context"
        " (practice_enter) in one pipeline on a raw psycopg connection; seed 000 promises"
        " 5-15 ms for these queries. A miss drops the member's cache tag first (inside the"
        " timing); a hit still asks the database whether the caller sees the member."
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""The capacity model under load: N simulated warm containers, each a process of
its own with the production pool settings (PRACTICE_DB_POOL_MIN/MAX 1/2), drive a
mix of state reads, saves, submits and batch reads through the attempts and batch
handlers, via PgBouncer in transaction mode with a small server pool (standing in
for RDS Proxy), for N = 10, 50, 200. Beside each: the raw database's own
throughput on the same mix (the same statements with their context, pipelined, on
direct connections, no framework, no pooler).

Reports throughput, p50/p99, errors (503s: the breaker or the budget), and the
most server connections the pooler held. Target: throughput grows with N until a
CPU is the limit; past it requests queue (p99 grows) and none fails.

Run: `python -m bench load [--ns 10,50,200] [--seconds 15] [--server-pool 8]`.
Needs `pgbouncer` on PATH (`apt-get install pgbouncer`).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from bench.common import bench_database, p50_p99, print_table, use_function_environment

# The mix: mostly trainees reading and saving their attempt; a manager's batch read.
MIX = (("state", 0.62), ("save", 0.25), ("submit", 0.08), ("batch", 0.05))
BATCH_SIZE = 20
SAVE_BODY = {"answers": {"q1": "yes"}, "auto_save_data": {"progress": 40}}
# Attempts each container owns: saved over and over, and submitted once each.
SAVE_SLOTS = 4
SUBMIT_SLOTS = 400


@dataclass
class Plan:
    """One container's share of the seeded data."""

    reads: list[str]
    saves: list[str]
    submits: list[str]


@dataclass
class Result:
    """What one container measured."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    unavailable: int = 0
    submits_left: int = 0


def _pick(rng: random.Random) -> str:
    roll, acc = rng.random(), 0.0
    for kind, weight in MIX:
        acc += weight
        if roll < acc:
            return kind
    return MIX[0][0]


def _handler_worker(
    index: int, url: str, people: dict, plan: Plan, start: Any, seconds: float, out: Any
) -> None:
    """A warm container: the functions' own modules and pool, one request at a time."""
    os.environ["PRACTICE_DATABASE_URL"] = url
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # no EMF lines on stdout
    from bench.attempts import Handler
    from functions.attempts import app as attempts_app
    from functions.batch import app as batch_app

    # Two hundred containers start at once on two cores: give their pools time.
    attempts_app.db.pool.wait(timeout=300)
    batch_app.db.pool.wait(timeout=300)
    handler = Handler(people)
    from tests.support import http_event

    versions = dict.fromkeys(plan.saves, 1)
    submits = list(plan.submits)
    rng = random.Random(index)
    context = handler.context_type(timeout=900.0)

    def call(kind: str) -> int:
        if kind == "state":
            event = handler.event("GET", rng.choice(plan.reads), "admin", "state")
            return handler.app.handler(event, context)["statusCode"]
        if kind == "save":
            attempt = rng.choice(plan.saves)
            body = SAVE_BODY | {"expected_version": versions[attempt]}
            event = handler.event("PATCH", attempt, "trainee", "save", body)
            status = handler.app.handler(event, context)["statusCode"]
            if status == 200:
                versions[attempt] += 1
            return status
        if kind == "submit":
            if not submits:
                return 0
            event = handler.event("POST", submits.pop(), "trainee", "submit", {})
            return handler.app.handler(event, context)["statusCode"]
        ids = rng.sample(plan.reads, BATCH_SIZE)
        event = http_event(
            "POST",
            "/attempts/batch",
            claims=handler.claims["admin"],
            body={"operation": "multiple_states", "data": ids},
        )
        return batch_app.handler(event, context)["statusCode"]

    for kind in ("state", "save", "batch"):  # warm: principal cached, plans made
        call(kind)
    result = Result()
    out.put(("ready", index))
    start.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = _pick(rng)
        began = time.perf_counter()
        status = call(kind)
        elapsed = (time.perf_counter() - began) * 1000
        if status == 0:
            continue
        if status == 200:
            result.latencies.setdefault(kind, []).append(elapsed)
        else:
            result.errors[kind] = result.errors.get(kind, 0) + 1
            result.unavailable += status == 503
    result.submits_left = len(submits)
    out.put(("done", result))


def _raw_worker(
    index: int, url: str, people: dict, plan: Plan, start: Any, seconds: float, out: Any
) -> None:
    """The same mix as the app role on a direct connection: each statement with its
    context (practice_enter) in one pipeline, no framework, no pooler."""
    from practice.attempts.service import SAVE_DRAFTS, STATES, SUBMIT
    from practice.core.db import ENTER

    org = people["org_id"]
    rng = random.Random(index)
    versions = dict.fromkeys(plan.saves, 1)
    submits = list(plan.submits)

    def context(role: str) -> dict:
        return {"org_id": org, "user_id": people[role], "role": role, "statement_timeout": "10s"}

    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:

        def piped(role: str, sql: str, params: dict) -> list:
            with conn.pipeline():
                conn.execute(ENTER, context(role))
                cursor = conn.execute(sql, params)
            return cursor.fetchall()

        def call(kind: str) -> int:
            if kind == "state":
                piped("admin", STATES, {"org_id": org, "ids": [rng.choice(plan.reads)]})
            elif kind == "save":
                attempt = rng.choice(plan.saves)
                item = {"ord": 0, "attempt_id": attempt} | SAVE_BODY
                item["expected_version"] = versions[attempt]
                params = {"org_id": org, "user_id": people["trainee"], "items": Jsonb([item])}
                piped("trainee", SAVE_DRAFTS, params)
                versions[attempt] += 1
            elif kind == "submit":
                if not submits:
                    return 0
                item = {"ord": 0, "attempt_id": submits.pop()}
                params = {"org_id": org, "user_id": people["trainee"], "items": Jsonb([item])}
                piped("trainee", SUBMIT, params)
            else:
                ids = rng.sample(plan.reads, BATCH_SIZE)
                piped("admin", STATES, {"org_id": org, "ids": ids})
            return 200

        for kind in ("state", "save", "batch"):
            call(kind)
        result = Result()
        out.put(("ready", index))
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kind = _pick(rng)
            began = time.perf_counter()
            try:
                status = call(kind)
            except psycopg.Error:
                status = 500
            elapsed = (time.perf_counter() - began) * 1000
            if status == 200:
                result.latencies.setdefault(kind, []).append(elapsed)
            elif status:
                result.errors[kind] = result.errors.get(kind, 0) + 1
    result.submits_left = len(submits)
    out.put(("done", result))


def _fresh(admin_url: str, people: dict, count: int) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
            " select %s, %s, %s from generate_series(1, %s) returning id",
            [people["org_id"], people["trainee"], people["scenario"], count],
        ).fetchall()
    return [str(r[0]) for r in rows]


def _plans(admin_url: str, people: dict, n: int) -> list[Plan]:
    with psycopg.connect(admin_url) as conn:
        reads = [
            str(r[0])
            for r in conn.execute(
                "select id from scenario_attempts where org_id = %s limit 2000",
                [people["org_id"]],
            )
        ]
    fresh = _fresh(admin_url, people, n * (SAVE_SLOTS + SUBMIT_SLOTS))
    per = SAVE_SLOTS + SUBMIT_SLOTS
    return [
        Plan(
            reads,
            fresh[i * per : i * per + SAVE_SLOTS],
            fresh[i * per + SAVE_SLOTS : (i + 1) * per],
        )
        for i in range(n)
    ]


@contextmanager
def pgbouncer(server_url: str, pool_size: int) -> Iterator[tuple[str, str]]:
    """PgBouncer in transaction mode in front of ``server_url``'s server; yields its
    host:port and the admin console's URL."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        raise SystemExit("pgbouncer is not installed (apt-get install pgbouncer)")
    target = conninfo_to_dict(server_url)
    from dev.postgres import free_port

    port = free_port()
    folder = tempfile.mkdtemp(prefix="practice-bouncer-")
    config = os.path.join(folder, "pgbouncer.ini")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            f"""[databases]
* = host={target.get("host", "127.0.0.1")} port={target.get("port", 5432)}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
admin_users = pgbouncer_admin
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {pool_size}
max_db_connections = {pool_size}
server_reset_query =
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
        )
    with open(os.path.join(folder, "userlist.txt"), "w", encoding="utf-8") as f:
        f.write('"practice_lambda" ""\n"pgbouncer_admin" ""\n')
    command = [binary, config]
    if os.geteuid() == 0:  # it will not run as root
        shutil.chown(folder, "postgres")
        for name in os.listdir(folder):
            shutil.chown(os.path.join(folder, name), "postgres")
        command = [binary, "-u", "postgres", config]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = make_conninfo(
            host="127.0.0.1", port=port, dbname="pgbouncer", user="pgbouncer_admin"
        )
        for _ in range(100):
            try:
                psycopg.connect(admin, autocommit=True).close()
                break
            except psycopg.Error:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", admin
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


class ServerConnections:
    """The most server connections the pooler held (active + idle + used) while sampling."""

    def __init__(self, admin_url: str | None) -> None:
        self.admin_url, self.peak, self.waiting_peak = admin_url, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.admin_url is None:
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                # The admin console speaks the simple query protocol only.
                cursor = psycopg.ClientCursor(conn).execute("show pools")
                names = [c.name for c in cursor.description]
                for row in cursor.fetchall():
                    pool = dict(zip(names, row, strict=True))
                    if pool.get("user") != "practice_lambda":
                        continue
                    held = sum(int(pool.get(k) or 0) for k in ("sv_active", "sv_idle", "sv_used"))
                    self.peak = max(self.peak, held)
                    self.waiting_peak = max(self.waiting_peak, int(pool.get("cl_waiting") or 0))

    def __enter__(self) -> ServerConnections:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _run(
    worker: Any,
    n: int,
    url: str,
    people: dict,
    plans: list[Plan],
    seconds: float,
    admin: str | None,
) -> tuple[Result, float, ServerConnections]:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=worker, args=(i, url, people, plans[i], start, seconds, out))
        for i in range(n)
    ]
    for p in processes:
        p.start()
    ready = 0
    while ready < n:
        kind, _ = out.get(timeout=600)
        ready += kind == "ready"
    total = Result()
    with ServerConnections(admin) as sampled:
        began = time.monotonic()
        start.set()
        for _ in range(n):
            kind, result = out.get(timeout=seconds + 600)
            for k, values in result.latencies.items():
                total.latencies.setdefault(k, []).extend(values)
            for k, count in result.errors.items():
                total.errors[k] = total.errors.get(k, 0) + count
            total.unavailable += result.unavailable
        elapsed = time.monotonic() - began
    for p in processes:
        p.join(timeout=30)
    return total, min(elapsed, seconds + 1), sampled


def _row(label: str, result: Result, seconds: float, extra: str) -> tuple[str, ...]:
    every = [v for values in result.latencies.values() for v in values]
    done = len(every)
    errors = sum(result.errors.values())
    p50, p99 = p50_p99(every) if every else (0.0, 0.0)
    return (
        label,
        f"{done / seconds:,.0f}",
        f"{p50:.2f}",
        f"{p99:.2f}",
        f"{errors} ({result.unavailable} were 503)",
        extra,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("--ns", default="10,50,200", help="containers per run (10,50,200)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--server-pool", type=int, default=8, help="PgBouncer's server connections")
    parser.add_argument("--attempts", type=int, default=20_000)
    args = parser.parse_args(argv if argv is not None else [])
    ns = [int(n) for n in args.ns.split(",")]
    rows = []
    with bench_database("practice_load") as db:
        from dev import seed

        print(f"seeding {args.attempts:,} attempts …", file=sys.stderr)
        seed.load_demo_data(db.admin_url, attempts=args.attempts, progress=False)
        from bench.attempts import _pick_people

        people = _pick_people(db.admin_url)
        use_function_environment(db.app_url)
        # What every container imports, once, before the fork: shared pages.
        import fastapi  # noqa: F401
        import mangum  # noqa: F401

        import practice.attempts.service
        import practice.batch.service
        import practice.web  # noqa: F401
        import tests.support  # noqa: F401
        from bench import attempts  # noqa: F401

        with pgbouncer(db.server_url, args.server_pool) as (hostport, admin):
            host, _, port = hostport.rpartition(":")
            pooled = make_conninfo(db.app_url, host=host, port=port)
            with psycopg.connect(db.server_url) as conn:
                max_connections = int(conn.execute("show max_connections").fetchone()[0])
            for n in ns:
                print(f"N = {n} …", file=sys.stderr)
                plans = _plans(db.admin_url, people, n)
                result, seconds, sampled = _run(
                    _handler_worker, n, pooled, people, plans, args.seconds, admin
                )
                rows.append(
                    _row(
                        f"handlers, N = {n}, via PgBouncer ({args.server_pool} server conns)",
                        result,
                        seconds,
                        f"{sampled.peak} (clients waiting ≤ {sampled.waiting_peak})",
                    )
                )
                raw_n = min(n, max_connections - 20)
                plans = _plans(db.admin_url, people, raw_n)
                result, seconds, _ = _run(
                    _raw_worker, raw_n, db.app_url, people, plans, args.seconds, None
                )
                rows.append(
                    _row(f"  raw database, {raw_n} direct connections", result, seconds, f"{raw_n}")
                )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print_table(
        f"load: mix {', '.join(f'{k} {w:.0%}' for k, w in MIX)} (batch = multiple_states of"
        f" {BATCH_SIZE}); {args.seconds:.0f} s per run; this machine: {os.cpu_count()} cores,"
        f" load average at the end {load}",
        rows,
        ("run", "req/s", "p50 ms", "p99 ms", "errors", "server connections (peak)"),
    )
    print(
        "each handler container is a process with the production pool (1-2 connections) and"
        " the real attempts and batch handlers, one request at a time; the raw rows run the"
        " same statements with practice_enter, pipelined, as the app role on direct"
        " connections. Clients and the database share this machine's cores."
    )


if __name__ == "__main__":
    main(sys.argv[1:])

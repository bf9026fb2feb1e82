"""The pool, the breaker and the request budget against a real server whose line is
cut and mended (tests/faults.py), so they run on whichever PostgreSQL the suite
uses: the embedded 18, or CI's 15.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import errors as psycopg_errors

from practice.core.breaker import CircuitOpen
from practice.core.budget import request_budget
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Unavailable
from practice.core.health import health_report
from practice.core.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.faults import CuttableLine, cuttable
from tests.support import World


@pytest.fixture
def line(database: MigratedDatabase) -> Iterator[CuttableLine]:
    with cuttable(database.admin_url) as cut_line:
        yield cut_line


@pytest.fixture
def db(line: CuttableLine, database: MigratedDatabase) -> Iterator[Database]:
    """The container's pool behind the line, with the default settings."""
    yield from _database(Settings(database_url=line.url(database.admin_url)))


@pytest.fixture
def quick_db(line: CuttableLine, database: MigratedDatabase) -> Iterator[Database]:
    """The same, giving up on the pool after 0.3 s, for tests of the breaker's logic."""
    yield from _database(Settings(database_url=line.url(database.admin_url), db_pool_timeout=0.3))


def _database(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    database.open()
    database.pool.wait(timeout=10)
    yield database
    database.close()


class LambdaContext:
    """A Lambda context with the attempts function's timeout (template.yaml: 10 s)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._ends = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self._ends - time.monotonic()) * 1000)


def _request(db: Database) -> None:
    with request_budget(LambdaContext(), db.settings.request_budget_seconds):
        db.query(None, "select 1")


def _backend_pid(db: Database) -> int:
    return db.query(None, "select pg_backend_pid() as pid")[0]["pid"]


def test_the_pool_survives_a_lost_line_between_requests(db: Database, line: CuttableLine) -> None:
    before = _backend_pid(db)
    line.cut()
    line.restore()
    after = _backend_pid(db)  # the checkout check discards the dead connection
    assert after != before
    assert db.breaker.state == "closed"


def test_the_breaker_opens_after_five_failures_and_a_probe_closes_it(
    quick_db: Database, line: CuttableLine
) -> None:
    db = quick_db
    # The breaker's clock is the test's: the open window passes without waiting.
    now = [time.monotonic()]
    db.breaker._clock = lambda: now[0]
    line.cut()
    for attempt in range(5):
        assert db.breaker.state == "closed", f"opened early, after {attempt} failures"
        with pytest.raises(Unavailable):
            _request(db)
    assert db.breaker.state == "open"

    # Open: the answer comes at once, without asking the pool for a connection.
    requests_before = db.pool.get_stats().get("requests_num", 0)
    with pytest.raises(CircuitOpen) as raised:
        _request(db)
    assert raised.value.retry_after == 1
    assert db.pool.get_stats().get("requests_num", 0) == requests_before

    line.restore()
    now[0] += 1.0
    assert db.breaker.state == "half_open"
    assert db.query(None, "select 1 as one") == [{"one": 1}]  # the probe
    assert db.breaker.state == "closed"


def test_health_asks_the_database_not_the_breaker(quick_db: Database, line: CuttableLine) -> None:
    db = quick_db
    line.cut()
    for _ in range(5):
        with pytest.raises(Unavailable):
            _request(db)
    assert db.breaker.state == "open"
    assert health_report(db).status == "unavailable"
    line.restore()
    assert health_report(db).status == "ok"  # the truth, while the breaker was still open
    assert db.breaker.state == "closed"  # and it let the requests back in


@dataclass
class Outcome:
    started: float
    ended: float
    ok: bool


def test_an_outage_answers_503_within_the_budget_and_recovery_takes_seconds(
    db: Database, line: CuttableLine
) -> None:
    """Four clients keep asking; the line is cut, then mended. Every request
    answers before the function's 10 s timeout, and requests succeed again
    within 5 s of the database's return."""
    outcomes: list[Outcome] = []
    recorded = threading.Condition()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                _request(db)
                ok = True
            except Unavailable:
                ok = False
            with recorded:
                outcomes.append(Outcome(started, time.monotonic(), ok))
                recorded.notify_all()
            stop.wait(0.02)  # a client's think time, not a wait for a condition

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        until = _waiter(recorded)
        until(lambda: sum(o.ok for o in outcomes) >= 20, "the load to get going")
        cut_at = time.monotonic()
        line.cut()
        until(
            lambda: sum(not o.ok and o.started > cut_at for o in outcomes) >= 30,
            "the outage to be answered",
        )
        back_at = time.monotonic()
        line.restore()
        until(
            lambda: sum(o.ok and o.started > back_at for o in outcomes) >= 20,
            "requests to succeed again",
        )
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=15)
    during = [o for o in outcomes if o.started > cut_at]
    worst = max(o.ended - o.started for o in during)
    recovery = min(o.ended for o in outcomes if o.ok and o.started > back_at) - back_at
    print(f"outage: worst request {worst:.2f} s, first success {recovery:.2f} s after return")
    assert worst < LambdaContext().get_remaining_time_in_millis() / 1000 - 1
    assert worst <= db.settings.request_budget_seconds + 0.5
    assert recovery <= 5.0


def _waiter(recorded: threading.Condition):
    """Wait, woken by each recorded outcome, until a condition holds (at most 30 s)."""

    def until(condition, what: str) -> None:
        with recorded:
            assert recorded.wait_for(condition, timeout=30), f"timed out waiting for {what}"

    return until


def test_one_statement_costs_one_round_trip(db: Database, tmp_path: Path) -> None:
    """The context and the statement leave, with one Sync, before any answer arrives."""
    import psycopg

    trace = tmp_path / "libpq.trace"
    with db.pool.connection() as conn, trace.open("w") as out:
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        with db._scoped(conn, None):
            conn.execute("select 1")
        conn.pgconn.untrace()
    lines = [line.split("\t") for line in trace.read_text().splitlines() if line]
    directions = [line[0] for line in lines]
    first_answer = directions.index("B")
    assert "F" not in directions[first_answer:], "the client waited for an answer mid-request"
    messages = [line[2] for line in lines if line[0] == "F"]
    assert messages.count("Sync") == 1
    sent = trace.read_text()
    assert sent.index("practice_enter") < sent.index("select 1")


def test_the_context_and_the_work_commit_or_roll_back_together(db: Database) -> None:
    db.query(None, "create table if not exists pipeline_probe (v text)")
    try:
        with pytest.raises(psycopg_errors.DivisionByZero):
            db.run(
                None,
                lambda c: (
                    c.execute("insert into pipeline_probe values (current_setting('app.role'))"),
                    c.execute("select 1 / 0"),
                ),
            )
        assert db.query(None, "select count(*) as n from pipeline_probe") == [{"n": 0}]
        db.run(None, lambda c: c.execute("insert into pipeline_probe values ('kept')"))
        assert db.query(None, "select v from pipeline_probe") == [{"v": "kept"}]
    finally:
        # Gone with the test: the schema rules check every table the owner has.
        db.query(None, "drop table if exists pipeline_probe")


def test_a_python_error_after_a_write_rolls_the_write_back(db: Database) -> None:
    db.query(None, "create table if not exists pipeline_python_probe (v text)")

    def write_then_fail(conn) -> None:
        conn.execute("insert into pipeline_python_probe values ('lost') returning v").fetchall()
        raise ValueError("the work failed after its statement reached the server")

    try:
        with pytest.raises(ValueError, match="work failed"):
            db.run(None, write_then_fail)
        with pytest.raises(ValueError, match="work failed"), db.transaction(None) as conn:
            write_then_fail(conn)
        assert db.query(None, "select count(*) as n from pipeline_python_probe") == [{"n": 0}]
    finally:
        db.query(None, "drop table if exists pipeline_python_probe")


def test_a_transaction_block_reads_between_statements_under_one_context(
    db: Database, world: World
) -> None:
    manager = world.users["manager_a"]
    principal = Principal(manager.user_id, manager.org_id, Role.MANAGER)
    with db.transaction(principal) as conn:
        role = conn.execute("select current_setting('app.role') as r").fetchone()["r"]
        user = conn.execute("select current_setting('app.user_id') as u").fetchone()["u"]
    assert (role, user) == ("manager", manager.user_id)
    assert db.query(None, "select current_setting('app.role', true) as r")[0]["r"] in ("", None)


def test_under_snapstart_the_pool_opens_on_the_first_request(
    database: MigratedDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    restored = Database(Settings(database_url=database.app_url))
    restored.open()
    try:
        assert restored.pool.closed  # nothing to snapshot
        assert restored.query(None, "select 1 as one") == [{"one": 1}]
        assert not restored.pool.closed
    finally:
        restored.close()


def test_a_stream_whose_protocol_broke_is_a_lost_connection_and_its_connection_goes(
    db: Database,
) -> None:
    """Behind PgBouncer, a server killed at the end of a COPY left the client reading
    two results for its COMMIT (psycopg's InternalError, no SQLSTATE): that is the
    connection lost, answered as the database unreachable, and the connection is not
    handed to the next caller."""
    import psycopg

    used: list[psycopg.Connection] = []

    def stream_then_lose_track() -> None:
        with db.streaming(None, statement_timeout_ms=5_000) as conn:
            used.append(conn)
            raise psycopg.InternalError("received 2 results from command 'COMMIT'")

    with pytest.raises(Unavailable):
        stream_then_lose_track()
    assert used[0].closed
    assert db.query(None, "select 1 as one") == [{"one": 1}]

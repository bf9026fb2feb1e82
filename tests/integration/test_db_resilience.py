"""The pool and the breaker against a real server that is stopped and restarted.

These tests start their own embedded PostgreSQL (whatever DATABASE_URL says)
because they stop and restart it.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import errors as psycopg_errors

from dev.postgres import EmbeddedPostgres, free_port
from practice.config import Settings
from practice.db import CircuitOpen, Database
from practice.errors import Unavailable

OPEN_SECONDS = 1.0


@pytest.fixture(scope="module")
def own_server() -> Iterator[EmbeddedPostgres]:
    with tempfile.TemporaryDirectory(prefix="practice-pg-restart-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port())
        server.start()
        yield server
        server.stop(mode="immediate")


@pytest.fixture
def db(own_server: EmbeddedPostgres) -> Iterator[Database]:
    if not own_server.running:
        own_server.start()
    settings = Settings(
        database_url=own_server.admin_url,
        db_pool_timeout=0.3,
        db_connect_timeout=1,
        breaker_open_seconds=OPEN_SECONDS,
    )
    database = Database(settings)
    database.open()
    database.pool.wait(timeout=10)
    yield database
    database.close()


def _backend_pid(db: Database) -> int:
    return db.query(None, "select pg_backend_pid() as pid")[0]["pid"]


def test_the_pool_survives_a_server_restart_between_requests(
    db: Database, own_server: EmbeddedPostgres
) -> None:
    before = _backend_pid(db)
    own_server.stop(mode="fast")
    own_server.start()
    after = _backend_pid(db)  # the checkout check discards the dead connection
    assert after != before
    assert db.breaker.state == "closed"


def test_the_breaker_opens_after_five_failures_and_closes_when_the_server_returns(
    db: Database, own_server: EmbeddedPostgres
) -> None:
    # The breaker's clock is the test's: the open period passes without waiting.
    now = [time.monotonic()]
    db.breaker._clock = lambda: now[0]
    own_server.stop(mode="fast")
    for attempt in range(5):
        assert db.breaker.state == "closed", f"opened early, after {attempt} failures"
        with pytest.raises(Unavailable):
            db.query(None, "select 1")
    assert db.breaker.state == "open"

    # Open: the answer comes without asking the pool for a connection.
    requests_before = db.pool.get_stats().get("requests_num", 0)
    with pytest.raises(CircuitOpen) as raised:
        db.query(None, "select 1")
    assert 1 <= raised.value.retry_after <= OPEN_SECONDS + 1
    assert db.pool.get_stats().get("requests_num", 0) == requests_before

    own_server.start()
    now[0] += OPEN_SECONDS - 0.01
    assert db.breaker.state == "open"
    now[0] += 0.02
    assert db.breaker.state == "half_open"
    assert db.query(None, "select 1 as one") == [{"one": 1}]  # the probe
    assert db.breaker.state == "closed"


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
    assert sent.index("set_config") < sent.index("select 1")


def test_the_context_and_the_work_commit_or_roll_back_together(db: Database) -> None:
    db.query(None, "create table if not exists pipeline_probe (v text)")
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


def test_a_transaction_block_reads_between_statements_under_one_context(db: Database) -> None:
    from practice.identity import Principal, Role

    principal = Principal("user_block", uuid.uuid4(), Role.MANAGER)
    with db.transaction(principal) as conn:
        role = conn.execute("select current_setting('app.role') as r").fetchone()["r"]
        user = conn.execute("select current_setting('app.user_id') as u").fetchone()["u"]
    assert (role, user) == ("manager", "user_block")
    assert db.query(None, "select current_setting('app.role', true) as r")[0]["r"] in ("", None)

"""The migration runner: order, idempotence, checksums, atomicity, the advisory lock."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dev.stack import with_dbname
from practice.migrations import _LOCK_KEY, MigrationError, discover, migrate
from tests.conftest import MigratedDatabase


@pytest.fixture
def scratch_url(pg_server) -> Iterator[str]:
    server_url, _ = pg_server
    name = f"practice_scratch_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield with_dbname(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def _ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select name from schema_migrations order by name")]


def test_every_migration_is_applied_and_a_second_run_applies_nothing(
    database: MigratedDatabase,
) -> None:
    names = [m.name for m in discover()]
    assert names, "no migrations found"
    assert _ledger(database.admin_url) == names
    assert migrate(database.admin_url) == []


def test_an_edited_applied_migration_is_refused(scratch_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("create table first_table (id int);")
    assert migrate(scratch_url, tmp_path) == ["0001_first.sql"]
    (tmp_path / "0001_first.sql").write_text("create table first_table (id bigint);")
    (tmp_path / "0002_second.sql").write_text("create table second_table (id int);")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was edited"):
        migrate(scratch_url, tmp_path)
    assert _ledger(scratch_url) == ["0001_first.sql"]


def test_a_failing_migration_leaves_nothing_half_applied(scratch_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("create table ok_table (id int);")
    (tmp_path / "0002_broken.sql").write_text(
        "create table half_table (id int);\ninsert into half_table values ('not a number');"
    )
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        migrate(scratch_url, tmp_path)
    assert _ledger(scratch_url) == ["0001_ok.sql"]
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("select to_regclass('half_table')").fetchone() == (None,)


def test_a_second_runner_waits_for_the_first(scratch_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_only.sql").write_text("create table only_table (id int);")
    results: list[list[str]] = []
    with psycopg.connect(scratch_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        runner = threading.Thread(target=lambda: results.append(migrate(scratch_url, tmp_path)))
        runner.start()
        # Wait on a condition, not a clock: the runner's backend shows up as
        # waiting for our advisory lock.
        waiting = False
        for _ in range(500):
            waiting = holder.execute(
                "select exists (select 1 from pg_locks where locktype = 'advisory' and not granted)"
            ).fetchone()[0]
            if waiting:
                break
            runner.join(timeout=0.01)
        assert waiting, "the second runner did not wait for the lock"
        assert results == []
        holder.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    runner.join(timeout=30)
    assert results == [["0001_only.sql"]]
    assert migrate(scratch_url, tmp_path) == []

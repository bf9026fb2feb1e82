"""The migration runner: order, idempotence, checksums, atomicity, the advisory lock."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dev.postgres import MigratedDatabase, throwaway_database
from practice.core.migrations import _LOCK_KEY, MigrationError, discover, migrate
from tests.support import run_dev

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch_url(pg_server: str) -> Iterator[str]:
    with throwaway_database(pg_server, "practice_scratch", migrated=False) as db:
        yield db.admin_url


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


def test_a_comment_may_change_after_the_migration_applied(scratch_url: str, tmp_path: Path) -> None:
    first = tmp_path / "0001_first.sql"
    table = "create table first_table (id int, note text default '--x');"
    first.write_text(f"-- makes the table\n{table}\n")
    assert migrate(scratch_url, tmp_path) == ["0001_first.sql"]
    first.write_text(f"-- the table, explained better\n\n{table}  -- and why\n")
    assert migrate(scratch_url, tmp_path) == []
    # A "--" inside a string is part of the statement: changing it is an edit.
    first.write_text(table.replace("--x", "--y"))
    with pytest.raises(MigrationError, match=r"0001_first\.sql was edited"):
        migrate(scratch_url, tmp_path)


def test_a_ledger_of_byte_checksums_is_brought_forward(scratch_url: str, tmp_path: Path) -> None:
    first = tmp_path / "0001_first.sql"
    first.write_text("-- a first table\ncreate table first_table (id int);\n")
    assert migrate(scratch_url, tmp_path) == ["0001_first.sql"]
    raw = hashlib.sha256(first.read_bytes()).hexdigest()
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("update schema_migrations set checksum = %s", [raw])  # as runners once did
    assert migrate(scratch_url, tmp_path) == []
    with psycopg.connect(scratch_url) as conn:
        (checksum,) = conn.execute("select checksum from schema_migrations").fetchone()
    assert checksum == discover(tmp_path)[0].checksum
    assert checksum != raw


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


def test_make_migrate_migrates_the_database_database_url_names(pg_server: str) -> None:
    # `DATABASE_URL=… make migrate` is how a deployed database is migrated: it
    # must use that very database (not practice_dev beside it), and a second
    # run must apply nothing.
    with psycopg.connect(pg_server) as conn:
        before = {r[0] for r in conn.execute("select datname from pg_database")}
    with throwaway_database(pg_server, "practice_deployed", migrated=False) as db:
        first = run_dev("migrate", DATABASE_URL=db.admin_url)
        assert first.returncode == 0, first.stderr
        assert _ledger(db.admin_url) == [m.name for m in discover()]
        assert f"applied {discover()[0].name}" in first.stderr
        second = run_dev("migrate", DATABASE_URL=db.admin_url)
        assert second.returncode == 0, second.stderr
        assert "applied" not in second.stderr
        assert "is up to date" in second.stdout
        with psycopg.connect(pg_server) as conn:
            after = {r[0] for r in conn.execute("select datname from pg_database")}
    assert after - before == {db.name}  # no practice_dev created on the side


def test_the_layer_copy_finds_the_migrations_from_the_working_directory(tmp_path: Path) -> None:
    # Inside a SAM layer the module sits at /opt/python/practice/core/migrations.py,
    # nowhere near sql/: it looks above the working directory, or where
    # PRACTICE_MIGRATIONS_DIR says.
    layer = tmp_path / "opt" / "python" / "practice"
    (layer / "core").mkdir(parents=True)
    shutil.copy(
        ROOT / "layers/shared/python/practice/core/migrations.py", layer / "core/migrations.py"
    )
    (layer / "__init__.py").write_text("")
    (layer / "core" / "__init__.py").write_text("")
    count = "from practice.core.migrations import discover; print(len(discover()))"
    env = {k: v for k, v in os.environ.items() if k != "PRACTICE_MIGRATIONS_DIR"}
    run = lambda cwd, **extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", count],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(layer.parent), **extra},
        capture_output=True,
        text=True,
        check=False,
    )
    expected = str(len(discover()))
    assert run(ROOT / "functions").stdout.strip() == expected
    assert run(tmp_path, PRACTICE_MIGRATIONS_DIR=str(ROOT / "sql/migrations")).stdout.strip() == (
        expected
    )
    lost = run(tmp_path)
    assert lost.returncode != 0
    assert "PRACTICE_MIGRATIONS_DIR" in lost.stderr

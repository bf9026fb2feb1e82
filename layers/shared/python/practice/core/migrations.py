"""Applies ``sql/migrations/NNNN_<what>.sql`` in order, each in its own transaction.

Applied files are recorded with a checksum; an applied file that was edited
afterwards stops the runner, and an advisory lock keeps two runners apart.

The folder is PRACTICE_MIGRATIONS_DIR when set, else the first ``sql/migrations``
found above this file (a checkout) or above the working directory (the layer's
copy of this module lives far from the repository's ``sql/``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg

# An arbitrary constant that names "the migration runner" for pg_advisory_lock.
_LOCK_KEY = 727_140_001

_LEDGER = """
create table if not exists schema_migrations (
    name text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
)
"""


class MigrationError(RuntimeError):
    """The migrations cannot be applied as they stand."""


def default_directory() -> Path:
    """PRACTICE_MIGRATIONS_DIR, else the nearest ``sql/migrations`` above this file or the cwd."""
    configured = os.environ.get("PRACTICE_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    cwd = Path.cwd().resolve()
    for base in (*Path(__file__).resolve().parents, cwd, *cwd.parents):
        if (base / "sql" / "migrations").is_dir():
            return base / "sql" / "migrations"
    raise MigrationError("no sql/migrations found: set PRACTICE_MIGRATIONS_DIR")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's text."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's bytes."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    """The migration files in apply order (``directory`` defaults to default_directory())."""
    directory = directory or default_directory()
    if not directory.is_dir():
        raise MigrationError(f"{directory} is not a folder of migrations")
    files = sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())
    return [Migration(p.name, p) for p in files]


def migrate(conninfo: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations as the schema owner; returns the names applied."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(_LEDGER)
            recorded = dict(conn.execute("select name, checksum from schema_migrations").fetchall())
            for migration in migrations:
                if migration.name in recorded:
                    if recorded[migration.name] != migration.checksum:
                        raise MigrationError(
                            f"{migration.name} was edited after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "insert into schema_migrations (name, checksum) values (%s, %s)",
                        [migration.name, migration.checksum],
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now

"""Applies ``sql/migrations/NNNN_<what>.sql`` in order, each in its own transaction.

Applied files are recorded with a checksum of their statements; an applied file
whose statements were edited afterwards stops the runner (a comment may change:
it does nothing to the database), and an advisory lock keeps two runners apart.

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

# The checksums databases recorded before the ledger checked statements rather
# than bytes, for the files whose comments have changed since: a database that
# recorded one of these is up to date, and its ledger is brought forward.
_BYTES_BEFORE_COMMENT_EDITS = {
    "0001_roles_enums_helpers.sql": (
        "807c60844d487b2eb56bc62de46a247f9f5b248dcffe75a70751277436519462"
    ),
    "0002_tenancy.sql": ("ab34ccf0b42e0ff937a3c316c72b8a31e6ea077d7624fa2c31f73aadac5614df"),
    "0003_scenarios_assignments_progress.sql": (
        "cc430261de784b8765cda0cb840f65a458043ad32cc4d3d75d668230cfa74ac3"
    ),
    "0004_attempts_activity_chat_sessions.sql": (
        "116584e5e89dbaa8d556cc6557c12b186f9cab173b4d9e3171f03c9f7a0a74cb"
    ),
    "0005_star_schema_reporting.sql": (
        "a9ef67b200854f66063899e6274676d78fedcffc2b381ee3e96e02d7b61f9449"
    ),
    "0008_attempt_functions.sql": (
        "591aacfc49e536bf46b59c726507a3025b8c0ffa35e2fea8e5eb49aaa4d00d21"
    ),
    "0009_grants.sql": ("53f288c85eaeb922476fa13463a0ee4c75ee2d521ae84074f9a796dd326c2ece"),
    "0013_batch.sql": ("398a51912c46f51d9504e4a42c1f304fa5ea04d60a911094bc54d85c7e3094b3"),
    "0017_completion_plans.sql": (
        "0861776397b460d297adf715a3ac15980c291c9e42f6e53ad7f60fb38107f700"
    ),
}

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
        """SHA-256 of the file's statements: without its ``--`` comments, its
        whitespace collapsed."""
        return hashlib.sha256(" ".join(_without_comments(self.sql).split()).encode()).hexdigest()

    def recorded_as(self, recorded: str) -> bool:
        """Whether a ledger's checksum is this file's: of its statements, of its
        bytes (ledgers before the statements were checked), or of the bytes it had
        before its comments changed."""
        if recorded == self.checksum:
            return True
        raw = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return recorded in (raw, _BYTES_BEFORE_COMMENT_EDITS.get(self.name))


def _without_comments(text: str) -> str:
    # ``--`` to the end of the line, outside single-quoted strings.
    kept, quoted, i = [], False, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        kept.append(char)
        i += 1
    return "".join(kept)


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
                    if not migration.recorded_as(recorded[migration.name]):
                        raise MigrationError(
                            f"{migration.name} was edited after it was applied; "
                            "add a new migration instead"
                        )
                    if recorded[migration.name] != migration.checksum:
                        conn.execute(
                            "update schema_migrations set checksum = %s where name = %s",
                            [migration.checksum, migration.name],
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

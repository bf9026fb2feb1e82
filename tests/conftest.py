"""The shared test harness: a real PostgreSQL (embedded 18, or DATABASE_URL),
a fresh database per run with every migration applied, and the Lambda's login
role, a member of the application role without BYPASSRLS."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dev.postgres import EmbeddedPostgres, free_port
from dev.stack import APP_LOGIN, prepare_database, with_dbname, with_user
from tests.support import World, build_world

ROOT = Path(__file__).resolve().parents[1]

# Settings the functions read at import; tests never reach AWS.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PracticeTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "practice-test")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: tests/unit → unit, and so on."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in {"unit", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, parts[0]))


@dataclass
class MigratedDatabase:
    """A fresh, migrated database and the URLs to reach it."""

    server_url: str  # superuser, on the server's maintenance database
    admin_url: str  # superuser, on this database (migrations, fixtures)
    app_url: str  # the Lambda's login role: RLS applies
    name: str
    embedded: EmbeddedPostgres | None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """The server: DATABASE_URL when set, else an embedded PostgreSQL 18."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external, None
        return
    with tempfile.TemporaryDirectory(prefix="practice-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port())
        server.start()
        try:
            yield server.admin_url, server
        finally:
            server.stop(mode="immediate")


@pytest.fixture(scope="session")
def database(pg_server: tuple[str, EmbeddedPostgres | None]) -> Iterator[MigratedDatabase]:
    """A database created for this run, migrated, dropped afterwards."""
    server_url, embedded = pg_server
    name = f"practice_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    admin_url = with_dbname(server_url, name)
    prepare_database(admin_url)
    app_url = with_user(admin_url, APP_LOGIN)
    os.environ["PRACTICE_DATABASE_URL"] = app_url
    try:
        yield MigratedDatabase(server_url, admin_url, app_url, name, embedded)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def world(database: MigratedDatabase) -> World:
    """Two orgs with teams and scenarios, shared by the whole run."""
    return build_world(database.admin_url)

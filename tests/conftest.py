"""The shared test harness: a real PostgreSQL (embedded 18, or DATABASE_URL),
a fresh database per run with every migration applied, and the Lambda's login
role, a member of the application role without BYPASSRLS."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dev.postgres import MigratedDatabase, server, throwaway_database
from tests.support import World, build_world

__all__ = ["MigratedDatabase"]

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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A superuser URL on the server: DATABASE_URL's, else an embedded PostgreSQL 18."""
    with server(os.environ.get("DATABASE_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def database(pg_server: str) -> Iterator[MigratedDatabase]:
    """A database created for this run, migrated, dropped afterwards."""
    with throwaway_database(pg_server, "practice_test") as created:
        db = created
        # PRACTICE_TEST_POOLER=host:port puts a transaction-pooling proxy
        # (PgBouncer, as RDS Proxy multiplexes) between the functions and the
        # server; migrations and fixtures still connect directly.
        pooler = os.environ.get("PRACTICE_TEST_POOLER")
        if pooler:
            host, _, port = pooler.rpartition(":")
            info = conninfo_to_dict(db.app_url) | {"host": host, "port": port}
            db = dataclasses.replace(db, app_url=make_conninfo(**info))
        os.environ["PRACTICE_DATABASE_URL"] = db.app_url
        yield db


@pytest.fixture(scope="session")
def world(database: MigratedDatabase) -> World:
    """Two orgs with teams and scenarios, shared by the whole run."""
    return build_world(database.admin_url)

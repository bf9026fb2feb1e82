"""The deploy's migration: the custom resource's handler invoked with the
CloudFormation events of ``events/migrate-cfn-*.json`` against a real PostgreSQL,
its answer caught by a local HTTP server standing in for the presigned ResponseURL."""

from __future__ import annotations

import importlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dev.invoke import LambdaContext
from dev.postgres import throwaway_database
from practice.core.config import get_settings
from practice.core.migrations import discover
from practice.deploy.custom_resource import run
from practice.deploy.schema import SchemaMigration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
LOGIN = "practice_lambda_deploytest"


class _Catcher(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        if self.server.refusals:  # type: ignore[attr-defined]
            self.server.refusals -= 1  # type: ignore[attr-defined]
            self.rfile.read(length)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.answers.append(  # type: ignore[attr-defined]
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def response_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catcher)
    server.answers = []  # type: ignore[attr-defined]
    server.refusals = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    """A database no migration has touched: what a fresh stack's cluster holds."""
    with throwaway_database(pg_server, "practice_deploy", migrated=False) as db:
        yield db.admin_url


@pytest.fixture
def login_role(pg_server: str) -> Iterator[str]:
    yield LOGIN
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(LOGIN)))


def _event(name: str, server: ThreadingHTTPServer) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    host, port = server.server_address[:2]
    # The same path and query a presigned S3 URL has, served here.
    path = event["ResponseURL"].split("amazonaws.com", 1)[1]
    event["ResponseURL"] = f"http://{host}:{port}{path}"
    return event


def _answer(server: ThreadingHTTPServer) -> dict[str, Any]:
    (answer,) = server.answers  # type: ignore[attr-defined]
    server.answers.clear()  # type: ignore[attr-defined]
    return answer


def _ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select name from schema_migrations order by name")]


def _broken_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for migration in discover():
        shutil.copy(migration.path, folder / migration.name)
    (folder / "9999_broken.sql").write_text(
        "create table deploy_probe (id int);\nalter table no_such_table add column x int;\n"
    )
    return folder


def test_create_applies_every_migration_and_answers_success(
    empty_db: str, response_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deployed handler itself, wired from its environment.
    monkeypatch.setenv("PRACTICE_OWNER_DATABASE_URL", empty_db)
    get_settings.cache_clear()
    try:
        app = importlib.reload(importlib.import_module("functions.migrate.app"))
        event = _event("migrate-cfn-create.json", response_server)
        context = LambdaContext("migrate", "512", 600.0)
        assert app.handler(event, context)["Status"] == "SUCCESS"
    finally:
        get_settings.cache_clear()
    answer = _answer(response_server)
    names = [m.name for m in discover()]
    body = answer["body"]
    assert answer["content_type"] == ""  # the presigned URL was signed without one
    assert answer["path"].startswith("/arn%3Aaws%3Acloudformation")
    assert "X-Amz-Signature=" in answer["path"]
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "practice-schema-practice"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        "SchemaMigration",
    )
    assert body["Data"] == {"Schema": names[-1], "Applied": ",".join(names)}
    assert _ledger(empty_db) == names

    # The same deploy again (an update that changed no migration) applies nothing.
    event = _event("migrate-cfn-update.json", response_server)
    run(event, SchemaMigration(lambda: empty_db, None, "practice"))
    body = _answer(response_server)["body"]
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"Schema": names[-1], "Applied": ""}
    assert body["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_a_failing_migration_fails_the_deploy_with_its_error_and_leaves_nothing(
    empty_db: str, response_server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    folder = _broken_folder(tmp_path)
    migration = SchemaMigration(lambda: empty_db, None, "practice", folder)
    event = _event("migrate-cfn-update.json", response_server)
    assert run(event, migration)["Status"] == "FAILED"
    body = _answer(response_server)["body"]
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("MigrationFailed: 9999_broken.sql: ")
    assert 'relation "no_such_table" does not exist' in body["Reason"]
    assert body["PhysicalResourceId"] == "practice-schema-practice"
    assert len(json.dumps(body)) < 4096
    # The migrations before it stay applied; the broken one left nothing.
    assert _ledger(empty_db) == [m.name for m in discover()]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('deploy_probe')").fetchone() == (None,)

    # CloudFormation then rolls back: an Update to the older code version. It
    # applies nothing (the broken file is still there) and succeeds, so the stack
    # returns to its previous functions instead of UPDATE_ROLLBACK_FAILED.
    rollback = _event("migrate-cfn-update-rollback.json", response_server)
    assert run(rollback, migration)["Status"] == "SUCCESS"
    body = _answer(response_server)["body"]
    assert body["Data"] == {"Schema": discover()[-1].name, "Applied": ""}
    assert "rollback" in body["Reason"]


def test_a_failed_create_is_deleted_cleanly_and_delete_drops_nothing(
    empty_db: str, response_server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    migration = SchemaMigration(lambda: empty_db, None, "practice", _broken_folder(tmp_path))
    create = _event("migrate-cfn-create.json", response_server)
    assert run(create, migration)["Status"] == "FAILED"
    failed = _answer(response_server)["body"]
    assert failed["PhysicalResourceId"]  # the Delete of the rollback will name it

    delete = _event("migrate-cfn-delete.json", response_server)
    delete["PhysicalResourceId"] = failed["PhysicalResourceId"]
    assert run(delete, migration)["Status"] == "SUCCESS"
    body = _answer(response_server)["body"]
    assert body["PhysicalResourceId"] == failed["PhysicalResourceId"]
    assert _ledger(empty_db) == [m.name for m in discover()]  # nothing dropped


def test_an_unreachable_database_fails_the_deploy_with_the_reason(
    response_server: ThreadingHTTPServer,
) -> None:
    unreachable = "host=/nonexistent/practice-deploy dbname=practice user=owner connect_timeout=1"
    event = _event("migrate-cfn-create.json", response_server)
    run(event, SchemaMigration(lambda: unreachable, None, "practice"))
    body = _answer(response_server)["body"]
    assert body["Status"] == "FAILED"
    assert "OperationalError" in body["Reason"]


def test_the_functions_login_is_created_with_its_password_and_membership(
    empty_db: str, response_server: ThreadingHTTPServer, login_role: str
) -> None:
    secret = {"user": login_role, "password": "first-Password-1"}
    migration = SchemaMigration(lambda: empty_db, lambda: dict(secret), "practice")
    run(_event("migrate-cfn-create.json", response_server), migration)
    body = _answer(response_server)["body"]
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert f"login {login_role} ensured" in body["Reason"]

    def role() -> tuple[Any, ...]:
        with psycopg.connect(empty_db) as conn:
            row = conn.execute(
                "select rolcanlogin, rolsuper, rolbypassrls, rolpassword is not null,"
                " pg_has_role(rolname, 'practice_app', 'member')"
                " from pg_authid where rolname = %s",
                [login_role],
            ).fetchone()
            assert row is not None
            return tuple(row)

    assert role() == (True, False, False, True, True)
    # A rotated secret: the next deploy sets the current password; nothing else changes.
    secret["password"] = "second-Password-2"
    run(_event("migrate-cfn-update.json", response_server), migration)
    assert _answer(response_server)["body"]["Status"] == "SUCCESS"
    assert role() == (True, False, False, True, True)


def test_the_owner_is_never_the_functions_login(
    empty_db: str, response_server: ThreadingHTTPServer
) -> None:
    with psycopg.connect(empty_db) as conn:
        owner = conn.execute("select current_user").fetchone()[0]
    migration = SchemaMigration(lambda: empty_db, lambda: {"user": owner, "password": "x"}, "p")
    run(_event("migrate-cfn-create.json", response_server), migration)
    body = _answer(response_server)["body"]
    assert body["Status"] == "FAILED"
    assert "is the schema owner" in body["Reason"]


def test_the_answer_is_retried_when_s3_refuses_it(
    empty_db: str, response_server: ThreadingHTTPServer
) -> None:
    response_server.refusals = 2  # type: ignore[attr-defined]
    event = _event("migrate-cfn-delete.json", response_server)
    assert run(event, SchemaMigration(lambda: empty_db, None, "practice"))["Status"] == "SUCCESS"
    assert _answer(response_server)["body"]["Status"] == "SUCCESS"

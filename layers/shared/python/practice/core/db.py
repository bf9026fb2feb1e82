"""Pooled PostgreSQL access: one pool per container, a transaction per request that
carries the caller's RLS context, retries of transient errors and a circuit breaker."""

from __future__ import annotations

import contextlib
import math
import os
import select
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from practice.core.breaker import CircuitBreaker, CircuitOpen
from practice.core.budget import seconds_left
from practice.core.config import Settings
from practice.core.errors import MembershipChanged, Unavailable
from practice.core.identity import Principal
from practice.core.timings import StatementTimings

if TYPE_CHECKING:
    from tenacity import Retrying

T = TypeVar("T")

# One statement begins every transaction (sql/migrations/0011): it checks the
# caller's membership and role and sets the RLS context with `set_config(...,
# true)`, transaction-local, so a pooled or proxied connection never carries one
# caller's context into the next request.
ENTER = (
    "select practice_enter(%(org_id)s::uuid, %(user_id)s::text, %(role)s::text,"
    " %(statement_timeout)s::text)"
)

# What practice_enter raises when the caller lost the membership or the role.
_MEMBERSHIP_CHANGED = "PMEMB"


# 57P01-03: the server is shutting down, crashed, or still starting up.
_SERVER_GOING_AWAY = pg_errors.AdminShutdown | pg_errors.CrashShutdown | pg_errors.CannotConnectNow


def is_transient(exc: BaseException) -> bool:
    """True for errors where repeating safe work may succeed at once: a connection
    lost mid-request (another pooled one may be fine), serialization failures and
    deadlocks. Not a pool timeout: that request has already waited its share."""
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return True
    return is_unreachable(exc) and not isinstance(exc, PoolTimeout)


def is_unreachable(exc: BaseException) -> bool:
    """True when the database could not be reached or the connection dropped."""
    if isinstance(exc, PoolTimeout | pg_errors.ConnectionException | _SERVER_GOING_AWAY):
        return True
    # A dropped connection surfaces as a bare OperationalError without SQLSTATE.
    return type(exc) is psycopg.OperationalError


def _out_of_budget(_retry_state: Any) -> bool:
    # Another attempt is worth it only with time left for it.
    return seconds_left(math.inf) < 0.1


def check_connection(conn: psycopg.Connection) -> None:
    """The pool's checkout check, without a round trip when nothing is amiss.

    An idle connection has nothing to read. When its socket is readable the
    server has spoken unasked (a shutdown notice before it closes, or EOF), so
    only then is the connection probed with psycopg's own check, which raises
    when it is dead and the pool replaces it.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def _with_secret(settings: Settings, kwargs: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The pool's per-connection kwargs: ``kwargs`` plus the login from the secret."""

    def resolve() -> dict[str, Any]:
        try:
            credentials = settings.secret_credentials()
        except Exception as exc:
            # Unreadable secret, unreadable login: to the pool and the breaker
            # it is a connection that could not be made (a 503, not a 500).
            raise psycopg.OperationalError(f"the database secret is unreadable: {exc}") from exc
        return kwargs | credentials

    return resolve


class Database:
    """The container's connection pool with RLS-scoped, retried transactions."""

    def __init__(self, settings: Settings, conninfo: str | None = None) -> None:
        self.settings = settings
        self._membership_changed: list[Callable[[Principal], None]] = []
        # Each query's duration, by org and statement (the query report's figures
        # where pg_stat_statements is absent).
        self.timings = StatementTimings()
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold,
            settings.breaker_open_seconds,
            settings.breaker_first_open_seconds,
        )
        connection_kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": settings.db_prepare_threshold,
            "row_factory": dict_row,
            "connect_timeout": settings.db_connect_timeout,
        }
        self.pool = ConnectionPool(
            conninfo if conninfo is not None else settings.conninfo(),
            min_size=min(settings.db_pool_min, settings.db_pool_max),
            max_size=settings.db_pool_max,
            timeout=settings.db_pool_timeout,
            max_idle=settings.db_max_idle,
            max_lifetime=settings.db_max_lifetime,
            check=check_connection,
            # The pool's own background reconnection backs off for minutes; the
            # breaker already paces retries per request, so a failed attempt is
            # given up at once and the next request asks for a fresh one.
            reconnect_timeout=0,
            # Called for every new connection: the login is read from the secret
            # (cached for its max age) each time, so a rotated password reaches
            # the next connection without a new container.
            kwargs=_with_secret(settings, connection_kwargs)
            if settings.uses_secret
            else connection_kwargs,
            open=False,
            name="practice",
        )

    def on_membership_changed(self, forget: Callable[[Principal], None]) -> None:
        """Call ``forget(principal)`` when a request finds the caller lost their
        membership or role (whoever caches principals registers here)."""
        self._membership_changed.append(forget)

    def open(self) -> None:
        """Start the pool without waiting, so a cold start never blocks on the database.

        Under SnapStart the init phase is snapshotted, and a socket opened there
        would be restored dead in every copy: the pool then opens on the first
        request after the restore instead (its connections are made there).
        """
        if os.getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
            return
        self.pool.open(wait=False)

    def _connection(self) -> AbstractContextManager[psycopg.Connection]:
        if self.pool.closed:  # not opened at init (SnapStart): open it now
            self.pool.open(wait=False)
        return self.pool.connection(timeout=self._pool_wait())

    def close(self) -> None:
        """Close every connection (tests, local stack shutdown)."""
        self.pool.close()

    def _context(self, principal: Principal | None) -> dict[str, str]:
        # No principal (health checks, the principal lookup itself) sets an
        # empty context: row-level security then shows no tenant rows at all.
        # A statement may run only as long as the request has left.
        budget_ms = seconds_left(math.inf) * 1000
        timeout_ms = int(max(100, min(self.settings.db_statement_timeout_ms, budget_ms)))
        return {
            "org_id": principal.org_id if principal else None,
            "user_id": principal.user_id if principal else None,
            "role": principal.role.value if principal else None,
            "statement_timeout": f"{timeout_ms}ms",
        }

    def _pool_wait(self) -> float:
        # Wait for a connection no longer than the request has left.
        left = seconds_left(self.settings.db_pool_timeout)
        if left <= 0:
            raise Unavailable("no time was left to reach the database", retry_after=1)
        return min(self.settings.db_pool_timeout, left)

    def _retrying(self) -> Retrying:
        # The attempts after the first, for work that is safe to repeat. tenacity
        # is imported here, on the first failure: a cold start that never
        # retries does not pay for importing it.
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        return Retrying(
            stop=stop_after_attempt(self.settings.db_retry_attempts - 1) | _out_of_budget,
            wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
            retry=retry_if_exception(
                lambda exc: is_transient(exc) and not isinstance(exc, CircuitOpen)
            ),
            reraise=True,
        )

    def run(
        self,
        principal: Principal | None,
        work: Callable[[psycopg.Connection], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """Run ``work(conn)`` in one transaction carrying the caller's RLS context.

        The connection is in pipeline mode: the context, the statements ``work``
        queues and the Sync that commits them travel together, so work that only
        queues statements and returns their cursors costs one network round trip
        (the cursors are read after the commit). Transient failures are retried with
        backoff and jitter only when the work is safe to repeat; an unreachable
        database becomes a 503.
        """
        with self._guarded(principal):
            try:
                return self._once(principal, work)
            except Exception as exc:
                # The retry machinery is built only when it is needed: on the
                # happy path it would cost every request more than the check.
                if not (idempotent and is_transient(exc)) or self.settings.db_retry_attempts < 2:
                    raise
            for attempt in self._retrying():
                with attempt:
                    result = self._once(principal, work)
            return result

    def _once(self, principal: Principal | None, work: Callable[[psycopg.Connection], T]) -> T:
        with (
            self._connection() as conn,
            self._scoped(conn, principal),
        ):
            return work(conn)

    @contextmanager
    def transaction(self, principal: Principal | None) -> Iterator[psycopg.Connection]:
        """The caller's transaction as a ``with`` block, for work that reads results
        between statements. Not retried (a block cannot be re-run): prefer ``run``."""
        with (
            self._guarded(principal),
            self._connection() as conn,
            self._scoped(conn, principal),
        ):
            yield conn

    @contextmanager
    def streaming(
        self, principal: Principal | None, *, statement_timeout_ms: int
    ) -> Iterator[psycopg.Connection]:
        """The caller's transaction outside pipeline mode, for statements whose
        results stream (``COPY ... TO STDOUT`` cannot run in a pipeline), with a
        statement timeout of its own (a long export, not a request's share).
        Guarded by the breaker like every other use; not retried."""
        context = self._context(principal) | {"statement_timeout": f"{statement_timeout_ms}ms"}
        with self._guarded(principal), self._connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(ENTER, context)
                    yield conn
            except psycopg.InternalError as exc:
                if exc.sqlstate is not None:
                    raise
                # The client lost track of the protocol: behind a pooler, a server
                # that went away mid-stream can leave extra results where the
                # COMMIT's answer should be. The connection is unusable; its server
                # is gone.
                conn.close()
                raise psycopg.OperationalError("the connection to the database was lost") from exc

    @contextmanager
    def _guarded(self, principal: Principal | None) -> Iterator[None]:
        # The breaker counts requests, not attempts: a request that could not
        # reach the database after its retries is one failure.
        self.breaker.before_call()
        try:
            yield
        except Unavailable:
            raise
        except Exception as exc:
            if getattr(exc, "sqlstate", None) == _MEMBERSHIP_CHANGED:
                self.breaker.record_success()
                for forget in self._membership_changed:
                    forget(principal)
                detail = exc.diag.message_primary or "the caller's membership changed"
                raise MembershipChanged(f"{detail}; retry the request") from exc
            if not is_unreachable(exc):
                self.breaker.record_success()  # the database answered; the work failed
                raise
            self.breaker.record_failure()
            raise Unavailable(
                "the database is unreachable", retry_after=self.breaker.retry_after()
            ) from exc
        self.breaker.record_success()

    def probe(self) -> bool:
        """Ask the database directly, whatever the breaker says, and tell the
        breaker what was found: a health check closes it as soon as the database
        answers again."""
        try:
            with self._connection() as conn:
                conn.execute("select 1")
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            self.breaker.record_failure(probe=True)
            return False
        self.breaker.record_success()
        return True

    @contextmanager
    def _scoped(
        self, conn: psycopg.Connection, principal: Principal | None
    ) -> Iterator[psycopg.Connection]:
        # In pipeline mode everything up to the Sync that closes the pipeline
        # runs as one implicit transaction: the context, the block's statements
        # and the commit (or, on any error, the rollback of all of it) without
        # BEGIN and COMMIT statements of their own. The transaction-local
        # context ends with it.
        try:
            with conn.pipeline():
                conn.execute(ENTER, self._context(principal))
                try:
                    yield conn
                except BaseException:
                    # Leaving the pipeline sends the Sync that commits its
                    # implicit transaction even when the block raised, so what
                    # the block already sent would commit: a queued ROLLBACK
                    # ends the transaction first.
                    if not conn.broken:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("rollback")
                    raise
        except BaseException:
            if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
            raise

    def query(
        self,
        principal: Principal | None,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        idempotent: bool = True,
        conn: psycopg.Connection | None = None,
    ) -> list[dict[str, Any]]:
        """One statement's rows: its context and commit in one round trip, or, given
        ``conn``, inside that caller's open transaction (fetching flushes without a
        Sync, so the caller may still queue what must commit with it)."""
        started = time.perf_counter()
        if conn is not None:
            # In the pipeline the description arrives with the rows: fetch first.
            rows = conn.execute(sql, params).fetchall()
        else:
            cur = self.run(principal, lambda c: c.execute(sql, params), idempotent=idempotent)
            # Whether rows came back, asked of the result itself: ``description``
            # would build a Column object per column on every call.
            returned = cur.pgresult is not None and cur.pgresult.status == ExecStatus.TUPLES_OK
            rows = cur.fetchall() if returned else []
        if isinstance(sql, str):  # a composed statement is built per call: no one statement
            org_id = principal.org_id if principal is not None else None
            self.timings.record(org_id, sql, time.perf_counter() - started, len(rows))
        return rows

    def stats(self) -> dict[str, Any]:
        """Pool size and breaker state, for the operators' report. No traffic
        counters: a container serves many orgs, and one must not see another's."""
        pool = self.pool.get_stats()
        return {
            "pool": {key: pool.get(key, 0) for key in ("pool_min", "pool_max", "pool_size")},
            "breaker": self.breaker.snapshot(),
        }

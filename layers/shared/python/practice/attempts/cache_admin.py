"""Cache maintenance for admins: what this container holds for their org
(``stats?type=optimization``), clearing it, and preloading attempt info."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from practice.attempts import query_report
from practice.attempts.query_report import QueryReport, StatementFigures
from practice.attempts.service import AttemptService
from practice.core.db import Database
from practice.core.identity import Principal, Role
from practice.core.model import Model


class ClearCache(Model):
    """`PATCH /attempts/{id}/optimize` (admins): clear the org's share of the cache."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["clear_cache"]


class Preload(Model):
    """`PATCH /attempts/{id}/optimize` (admins): preload the info of attempts
    (states are never cached: they carry versions)."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["preload"]
    attempt_ids: list[UUID] = Field(min_length=1, max_length=100)


type Optimize = ClearCache | Preload


def optimize_operation(document: object) -> type[ClearCache] | type[Preload]:
    """Which optimize body a document is, by its ``operation``."""
    preloading = isinstance(document, dict) and document.get("operation") == "preload"
    return Preload if preloading else ClearCache


class CacheStats(Model):
    """The org's share of this container's cache."""

    size: int
    max_size: int
    hits: int
    misses: int
    hit_rate: float


class CacheReport(Model):
    """``stats&type=optimization``: this container's cache, pool and breaker, and
    the query analysis (hot statements and recommendations)."""

    cache: CacheStats
    pool: dict[str, int]
    breaker: dict[str, Any]
    queries: QueryReport


class CacheCleared(Model):
    """How many of the org's entries were dropped."""

    operation: Literal["clear_cache"] = "clear_cache"
    cleared: int


class CachePreloaded(Model):
    """How many states were loaded, and which ids were not found."""

    operation: Literal["preload"] = "preload"
    preloaded: int
    not_found: list[UUID]


@dataclass
class CacheAdmin:
    """The container cache as its org's admins see and steer it."""

    db: Database
    attempts: AttemptService
    # pg_stat_statements and the tables' scan counters cover the whole database:
    # every org's traffic and row counts. An org's admin sees them only where the
    # deployment says the database is theirs alone (one tenant, or operators).
    database_wide: bool = False

    def report(self, principal: Principal, attempt_id: UUID) -> CacheReport:
        """The org's cache, the pool size and the breaker of this container, and the
        query analysis (admins, asked through an attempt of their org: another
        org's id is 404)."""
        principal.require(Role.ADMIN)
        self.attempts.state(principal, attempt_id)
        cache = self.attempts.cache.stats(principal.org_id)
        return CacheReport(
            cache=CacheStats.model_validate(cache),
            queries=self.queries(principal, cache),
            **self.db.stats(),
        )

    def queries(self, principal: Principal, cache: dict[str, Any]) -> QueryReport:
        """The hot statements, from pg_stat_statements when it answers and the
        deployment shows database-wide figures, else from this container's timings
        of the org's statements; and recommendations."""
        catalog: dict[str, Any] = {"statements": False, "tables": []}
        if self.database_wide:
            (catalog,) = self.db.query(principal, query_report.CATALOG)
        if catalog["statements"]:
            params = {
                "z": query_report.Z95,
                "track_planning": catalog["track_planning"],
                "limit": query_report.HOT_STATEMENTS,
            }
            statements = self.db.query(principal, query_report.STATEMENTS, params)
            source = "pg_stat_statements"
        else:
            statements = self.db.timings.figures(principal.org_id)[: query_report.HOT_STATEMENTS]
            source = "container"
        return QueryReport(
            source=source,
            statements=[
                StatementFigures.model_validate(
                    s | {"statement": query_report.label(s["statement"])}
                )
                for s in statements
            ],
            recommendations=query_report.recommend(statements, catalog["tables"], cache),
        )

    def optimize(
        self, principal: Principal, attempt_id: UUID, body: Optimize
    ) -> CacheCleared | CachePreloaded:
        """Clear the org's cache or preload attempt info into it (admins, asked
        through an attempt of their org, as for the report: another org's is 404)."""
        principal.require(Role.ADMIN)
        self.attempts.state(principal, attempt_id)  # and still an admin of it, as of now
        if isinstance(body, ClearCache):
            return CacheCleared(cleared=self.attempts.cache.clear_org(principal.org_id))
        found = {info.id for info in self.attempts.preload_info(principal, body.attempt_ids)}
        missing = [i for i in body.attempt_ids if i not in found]
        return CachePreloaded(preloaded=len(found), not_found=missing)

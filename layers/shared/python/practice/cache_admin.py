"""Seed 004's cache maintenance for admins: what this container holds for their
org (``stats&type=optimization``), clearing it, and preloading attempt info."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from practice.attempts.service import AttemptService
from practice.db import Database
from practice.errors import Invalid
from practice.identity import Principal, Role
from practice.model import Model


class Optimize(Model):
    """`PATCH /attempts/{id}?action=optimize` (admins): clear the org's cache, or
    preload the info of attempts (states are never cached: they carry versions)."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["clear_cache", "preload"]
    attempt_ids: list[UUID] = Field(default_factory=list, max_length=100)


class CacheStats(Model):
    """The org's share of this container's cache."""

    size: int
    max_size: int
    hits: int
    misses: int
    hit_rate: float


class CacheReport(Model):
    """``stats&type=optimization``: this container's cache, pool and breaker."""

    cache: CacheStats
    pool: dict[str, int]
    breaker: dict[str, Any]


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

    def report(self, principal: Principal, attempt_id: UUID) -> CacheReport:
        """The org's cache, the pool size and the breaker of this container (admins,
        asked through an attempt of their org: another org's id is 404)."""
        principal.require(Role.ADMIN)
        self.attempts.state(principal, attempt_id)
        cache = self.attempts.cache.stats(principal.org_id)
        return CacheReport(cache=CacheStats.model_validate(cache), **self.db.stats())

    def optimize(self, principal: Principal, body: Optimize) -> CacheCleared | CachePreloaded:
        """Clear the org's cache or preload attempt info into it (admins)."""
        principal.require(Role.ADMIN)
        if body.operation == "clear_cache":
            self.db.enter(principal)  # still an admin of this org, as of now
            return CacheCleared(cleared=self.attempts.cache.clear_org(principal.org_id))
        if not body.attempt_ids:
            raise Invalid("preload needs attempt_ids", field="body.attempt_ids")
        found = {info.id for info in self.attempts.preload_info(principal, body.attempt_ids)}
        missing = [i for i in body.attempt_ids if i not in found]
        return CachePreloaded(preloaded=len(found), not_found=missing)

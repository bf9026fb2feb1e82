"""A member's attempt history and comparisons, read through the tracking
functions of sql/migrations/0021 (each SECURITY INVOKER, org-filtered, and
refusing with SQLSTATE PNSEE a member the caller may not see).

The history page comes back as JSON PostgreSQL made (0029's
``get_user_scenario_attempts_page``), sent as is (``HistoryPage``): its
documents are never decoded only to be encoded again.

Reads are cached per container for ``cache_ttl_tracking`` seconds under the
org, the member, the request and the viewer's scope, tagged with the member
(``member_tag``) so that an attempt of theirs ending or being scored in this
container drops them at once. A cached answer is served only after the
database says again that the caller still sees the member (one round trip,
the one that checks the membership anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from practice.attempts.service import member_tag, viewer
from practice.core.cache import MISSING, TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import NotFound
from practice.core.identity import Principal
from practice.core.keyset import instant_cursor, read_instant
from practice.tracking.models import (
    BestAttempt,
    BestAttempts,
    Comparison,
    HistoryPage,
    Improvement,
    ImprovementPoint,
    RecentAttempt,
    RecentAttempts,
)

# What the tracking functions raise for a member the caller may not see.
MEMBER_UNSEEN = "PNSEE"
ME = "me"

HISTORY = (
    "select * from get_user_scenario_attempts_page(%(org_id)s, %(member)s, %(scenario_id)s,"
    " %(limit)s, %(before_at)s, %(before_id)s)"
)
BEST = "select * from get_user_best_attempts(%(org_id)s, %(member)s)"
IMPROVEMENT = (
    "select * from get_user_score_improvement(%(org_id)s, %(member)s, %(scenario_id)s,"
    " %(days_back)s)"
)
RECENT = (
    "select * from get_recent_attempts_comparison(%(org_id)s, %(member)s, %(scenario_id)s,"
    " %(limit)s)"
)
COMPARISON = "select * from get_attempt_comparison_summary(%(org_id)s, %(member)s, %(scenario_id)s)"
_SEES = "select practice_sees_member(%(member)s) as sees"


def member_of(principal: Principal, user_id: str) -> str:
    """The member a path names: a Clerk user id, or ``me`` for the caller."""
    return principal.user_id if user_id == ME else user_id


def query_member(
    db: Database, principal: Principal, sql: str, member: str, **values: Any
) -> list[dict[str, Any]]:
    """The rows of a statement about ``member`` that asks the member rule first
    (``practice_require_member``); ``NotFound`` when the caller may not see them."""
    params = {"org_id": principal.org_id, "member": member, **values}
    try:
        return db.query(principal, sql, params)
    except psycopg.Error as exc:
        if exc.sqlstate == MEMBER_UNSEEN:
            raise NotFound(f"user {member} not found") from exc
        raise


@dataclass
class TrackingService:
    """Attempt tracking, bound to the container's singletons."""

    db: Database
    cache: TenantCache
    settings: Settings

    def _rows(self, principal: Principal, sql: str, member: str, **values: Any) -> list[dict]:
        return query_member(self.db, principal, sql, member, **values)

    def _cached[R](
        self, principal: Principal, member: str, request: tuple, load: Callable[[], R]
    ) -> R:
        key = ("tracking", member, *request, viewer(principal))
        cached = self.cache.get(principal.org_id, key)
        if cached is not MISSING:
            if self._rows(principal, _SEES, member)[0]["sees"]:
                return cached
            self.cache.invalidate(principal.org_id, key)
            raise NotFound(f"user {member} not found")
        value = load()
        ttl = self.settings.cache_ttl_tracking
        self.cache.set(principal.org_id, key, value, ttl, tags=[member_tag(member)])
        return value

    def history(
        self,
        principal: Principal,
        user_id: str,
        scenario_id: UUID | None,
        limit: int,
        cursor: str | None,
    ) -> HistoryPage:
        """Completed attempts, newest first, a keyset page at a time."""
        member = member_of(principal, user_id)
        after = read_instant(cursor)

        def load() -> HistoryPage:
            (page,) = self._rows(
                principal,
                HISTORY,
                member,
                scenario_id=scenario_id,
                limit=limit,
                before_at=after[0] if after else None,
                before_id=after[1] if after else None,
            )
            count = page["attempt_count"]
            # A full page may have more after it: its last attempt is the cursor.
            following = (
                instant_cursor(page["last_started_at"], page["last_attempt_id"])
                if count and count >= limit
                else None
            )
            return HistoryPage.of(member, page["attempts"], count, following)

        return self._cached(principal, member, ("history", scenario_id, limit, cursor), load)

    def best(self, principal: Principal, user_id: str) -> BestAttempts:
        """The best completed attempt per scenario."""
        member = member_of(principal, user_id)

        def load() -> BestAttempts:
            rows = self._rows(principal, BEST, member)
            return BestAttempts(
                user_id=member, best_attempts=[BestAttempt.model_validate(r) for r in rows]
            )

        return self._cached(principal, member, ("best",), load)

    def improvement(
        self, principal: Principal, user_id: str, scenario_id: UUID, days_back: int
    ) -> Improvement:
        """Score delta, moving average, percentile and trend per scored attempt."""
        member = member_of(principal, user_id)

        def load() -> Improvement:
            rows = self._rows(
                principal, IMPROVEMENT, member, scenario_id=scenario_id, days_back=days_back
            )
            return Improvement(
                user_id=member,
                scenario_id=scenario_id,
                days_back=days_back,
                points=[ImprovementPoint.model_validate(r) for r in rows],
            )

        return self._cached(principal, member, ("improvement", scenario_id, days_back), load)

    def recent(
        self, principal: Principal, user_id: str, scenario_id: UUID | None, limit: int
    ) -> RecentAttempts:
        """The most recent completed attempts, flagged best/latest and ranked."""
        member = member_of(principal, user_id)

        def load() -> RecentAttempts:
            rows = self._rows(principal, RECENT, member, scenario_id=scenario_id, limit=limit)
            return RecentAttempts(
                user_id=member, attempts=[RecentAttempt.model_validate(r) for r in rows]
            )

        return self._cached(principal, member, ("recent", scenario_id, limit), load)

    def comparison(self, principal: Principal, user_id: str, scenario_id: UUID) -> Comparison:
        """First, best, latest, statistics and improvement on one scenario."""
        member = member_of(principal, user_id)

        def load() -> Comparison:
            rows = self._rows(principal, COMPARISON, member, scenario_id=scenario_id)
            if not rows:
                raise NotFound(f"scenario {scenario_id} not found")
            return Comparison.model_validate(rows[0] | {"user_id": member})

        return self._cached(principal, member, ("comparison", scenario_id), load)

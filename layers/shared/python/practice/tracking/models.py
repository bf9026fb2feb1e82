"""What attempt tracking gives: typed results of the five tracking functions
(sql/migrations/0021)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field
from pydantic_core import to_json

from practice.core.model import Document, Model, Rendered

Trend = Literal["improving", "stable", "declining"]


class HistoryAttempt(Model):
    """One completed attempt of a member's history."""

    attempt_id: UUID
    scenario_id: UUID
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    score: float | None
    score_breakdown: Document | None
    kpis: Document | None
    feedback_text: str | None


class AttemptHistory(Model):
    """A page of completed attempts, newest first."""

    user_id: str
    attempts: list[HistoryAttempt]
    next_cursor: str | None = Field(description="the cursor of the next page; null at the end")


@dataclass(frozen=True, slots=True)
class HistoryPage(Rendered):
    """A page of completed attempts as its ``AttemptHistory`` document, the
    attempts rendered by PostgreSQL (``get_user_scenario_attempts_page``, 0029):
    their documents (~46 KB a page of 50) are never decoded into Python objects
    only to be encoded again."""

    model: ClassVar = AttemptHistory

    user_id: str
    attempt_count: int
    next_cursor: str | None
    body: bytes

    @classmethod
    def of(
        cls, user_id: str, attempts: str, attempt_count: int, next_cursor: str | None
    ) -> HistoryPage:
        """The page of ``attempts``, a JSON array of ``HistoryAttempt`` documents."""
        body = b"".join(
            (
                b'{"user_id":',
                to_json(user_id),
                b',"attempts":',
                attempts.encode(),
                b',"next_cursor":',
                to_json(next_cursor),
                b"}",
            )
        )
        return cls(user_id, attempt_count, next_cursor, body)


class BestAttempt(Model):
    """The best completed attempt on one scenario (highest score, ties: most recent)."""

    scenario_id: UUID
    scenario_title: str | None
    best_attempt_id: UUID
    best_score: float
    best_attempt_date: datetime


class BestAttempts(Model):
    """A member's best attempt per scenario, most recent first."""

    user_id: str
    best_attempts: list[BestAttempt]


class ImprovementPoint(Model):
    """One scored attempt on the improvement curve."""

    attempt_id: UUID
    scenario_id: UUID
    attempt_date: datetime
    score: float
    attempt_number: int = Field(description="1-based chronological position on the scenario")
    score_delta: float | None = Field(description="score minus the previous attempt's")
    moving_avg_3: float = Field(description="mean of this and up to two previous scores")
    percentile_rank: float = Field(description="0..100 among the member's scores on it")
    improvement_trend: Trend = Field(
        description="moving average more than 2 points above the previous one's: improving;"
        " more than 2 below: declining; otherwise stable"
    )


class Improvement(Model):
    """A member's score improvement on a scenario over the last ``days_back`` days."""

    user_id: str
    scenario_id: UUID
    days_back: int
    points: list[ImprovementPoint]


class RecentAttempt(Model):
    """A recent completed attempt, placed among all of the member's on its scenario."""

    attempt_id: UUID
    scenario_id: UUID
    started_at: datetime
    score: float | None
    is_best_score: bool
    is_latest: bool
    rank_by_score: int = Field(description="rank by score, 1 = best; unscored rank last")


class RecentAttempts(Model):
    """A member's most recent completed attempts, newest first."""

    user_id: str
    attempts: list[RecentAttempt]


class Comparison(Model):
    """First, best and latest attempts of a member on a scenario, with statistics."""

    user_id: str
    scenario_id: UUID
    scenario_title: str
    total_attempts: int
    completed_attempts: int
    first_attempt_id: UUID | None
    first_score: float | None
    first_date: datetime | None
    best_attempt_id: UUID | None
    best_score: float | None
    best_date: datetime | None
    latest_attempt_id: UUID | None
    latest_score: float | None
    latest_date: datetime | None
    average_score: float | None
    median_score: float | None
    score_std_dev: float | None
    total_practice_seconds: int
    improvement_percentage: float | None = Field(
        description="(latest - first) / first * 100; null when the first score is 0 or"
        " missing or the latest is unscored"
    )

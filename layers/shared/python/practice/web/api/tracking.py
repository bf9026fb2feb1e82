"""A member's attempt history and comparisons over HTTP (``GET /users/{userId}/...``).

``{userId}`` is a Clerk user id or ``me``. A trainee asks about themselves, a
manager about their team and themselves, an admin about anyone of the org;
anyone else is 404, as an unknown user is.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field
from starlette.responses import Response

from practice.core.keyset import INSTANT_CURSOR
from practice.tracking.models import (
    AttemptHistory,
    BestAttempts,
    Comparison,
    Improvement,
    RecentAttempts,
)
from practice.tracking.service import TrackingService
from practice.web.params import In, RouteParams
from practice.web.routes import Call, Reply, Router

router = Router()

# A Clerk user id (as the tokens carry them) or "me".
USER_ID_PATTERN = r"^[A-Za-z0-9_\-.:|@]{1,128}$"
UserId = Annotated[
    str,
    In("path", "userId"),
    Field(pattern=USER_ID_PATTERN, description="a Clerk user id, or me for the caller"),
]
ScenarioId = Annotated[UUID, In("path", "scenarioId")]


class OfUser(RouteParams):
    user_id: UserId


class HistoryParams(RouteParams):
    user_id: UserId
    scenario_id: Annotated[
        UUID | None, In("query", "scenario_id"), Field(description="only this scenario")
    ] = None
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=200)] = 50
    cursor: Annotated[
        str | None,
        In("query", "cursor"),
        Field(pattern=INSTANT_CURSOR, description="next_cursor of the previous page"),
    ] = None


class ImprovementParams(RouteParams):
    user_id: UserId
    scenario_id: ScenarioId
    days_back: Annotated[
        int,
        In("query", "days_back"),
        Field(ge=1, le=3650, description="the window, in days"),
    ] = 90


class RecentParams(RouteParams):
    user_id: UserId
    scenario_id: Annotated[
        UUID | None, In("query", "scenario_id"), Field(description="only this scenario")
    ] = None
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=100)] = 5


class OfUserScenario(RouteParams):
    user_id: UserId
    scenario_id: ScenarioId


@router.get(
    "/users/{userId}/attempts",
    params=HistoryParams,
    replies=[Reply(200, AttemptHistory)],
    errors=(404,),
)
async def attempt_history(call: Call[HistoryParams, None], tracking: TrackingService) -> Response:
    """Completed attempts, newest first, a keyset page at a time (default 50)."""
    p = call.params
    page = tracking.history(call.principal, p.user_id, p.scenario_id, p.limit, p.cursor)
    return call.reply(200, page)


@router.get(
    "/users/{userId}/best-attempts",
    params=OfUser,
    replies=[Reply(200, BestAttempts)],
    errors=(404,),
)
async def best_attempts(call: Call[OfUser, None], tracking: TrackingService) -> Response:
    """The best completed attempt per scenario (highest score, ties: most recent)."""
    return call.reply(200, tracking.best(call.principal, call.params.user_id))


@router.get(
    "/users/{userId}/recent-attempts",
    params=RecentParams,
    replies=[Reply(200, RecentAttempts)],
    errors=(404,),
)
async def recent_attempts(call: Call[RecentParams, None], tracking: TrackingService) -> Response:
    """The most recent completed attempts with is_best_score, is_latest and rank_by_score."""
    p = call.params
    return call.reply(200, tracking.recent(call.principal, p.user_id, p.scenario_id, p.limit))


@router.get(
    "/users/{userId}/scenarios/{scenarioId}/improvement",
    params=ImprovementParams,
    replies=[Reply(200, Improvement)],
    errors=(404,),
)
async def score_improvement(
    call: Call[ImprovementParams, None], tracking: TrackingService
) -> Response:
    """Attempt number, score delta, 3-attempt moving average, percentile and trend."""
    p = call.params
    improvement = tracking.improvement(call.principal, p.user_id, p.scenario_id, p.days_back)
    return call.reply(200, improvement)


@router.get(
    "/users/{userId}/scenarios/{scenarioId}/comparison",
    params=OfUserScenario,
    replies=[Reply(200, Comparison)],
    errors=(404,),
)
async def attempt_comparison(
    call: Call[OfUserScenario, None], tracking: TrackingService
) -> Response:
    """First, best and latest attempts, statistics and the improvement percentage."""
    p = call.params
    return call.reply(200, tracking.comparison(call.principal, p.user_id, p.scenario_id))

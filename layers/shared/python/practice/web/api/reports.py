"""The dashboards over HTTP (``/reports/...``) and the caller's weekly digest
setting. Each says when its data was last refreshed."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field
from starlette.responses import Response

from practice.reporting.dashboards import ReportService, parse_month
from practice.reporting.models import (
    AssignmentsReport,
    DigestSettings,
    DigestSettingsBody,
    Leaderboard,
    MyReport,
    OrgOverview,
    RecentAttempts,
    ScenarioInsights,
    TeamReport,
)
from practice.web.params import In, RouteParams
from practice.web.routes import Call, Reply, Router

router = Router()


class LeaderboardParams(RouteParams):
    month: Annotated[
        str | None,
        In("query", "month"),
        Field(pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$", description="YYYY-MM; this UTC month"),
    ] = None
    scope: Annotated[
        Literal["org", "team"] | None,
        In("query", "scope"),
        Field(description="the whole org (admins' default) or one team (managers' default)"),
    ] = None
    team: Annotated[
        str | None,
        In("query", "team"),
        Field(
            min_length=1,
            max_length=128,
            description="scope=team: the manager whose team (admins); a manager's own team",
        ),
    ] = None


class RecentParams(RouteParams):
    since: Annotated[
        AwareDatetime | None, In("query", "from"), Field(description="started at or after")
    ] = None
    until: Annotated[
        AwareDatetime | None, In("query", "to"), Field(description="started before")
    ] = None
    scenario_id: Annotated[UUID | None, In("query", "scenarioId")] = None
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=100)] = 25
    cursor: Annotated[
        str | None,
        In("query", "cursor"),
        Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$"),
    ] = None


@router.get("/reports/org-overview", replies=[Reply(200, OrgOverview)])
async def org_overview(call: Call[None, None], reports: ReportService) -> Response:
    """Org-wide KPIs, a 30-day trend, top scenarios and a 365-day heatmap (admins)."""
    return call.reply(200, reports.org_overview(call.principal))


@router.get("/reports/leaderboard", params=LeaderboardParams, replies=[Reply(200, Leaderboard)])
async def leaderboard(call: Call[LeaderboardParams, None], reports: ReportService) -> Response:
    """A month's ranking with last month's beside it: a manager's team, or (admins)
    the org or any team."""
    params = call.params
    month = parse_month(params.month)
    return call.reply(200, reports.leaderboard(call.principal, month, params.scope, params.team))


@router.get("/reports/team", replies=[Reply(200, TeamReport)])
async def team_report(call: Call[None, None], reports: ReportService) -> Response:
    """The caller's team: average, assignment completion, rank among the org's teams."""
    return call.reply(200, reports.team(call.principal))


@router.get("/reports/assignments", replies=[Reply(200, AssignmentsReport)])
async def assignments_report(call: Call[None, None], reports: ReportService) -> Response:
    """Assigned scenarios with completion and the overdue ones (managers: their team)."""
    return call.reply(200, reports.assignments(call.principal))


@router.get("/reports/scenario-insights", replies=[Reply(200, ScenarioInsights)])
async def scenario_insights(call: Call[None, None], reports: ReportService) -> Response:
    """Per scenario: attempts, average, standard deviation, median, duration; high
    variance flagged (admins, managers)."""
    return call.reply(200, reports.scenario_insights(call.principal))


@router.get("/reports/me", replies=[Reply(200, MyReport)])
async def my_report(call: Call[None, None], reports: ReportService) -> Response:
    """The caller's week, average, trend, last attempts and upcoming assignments."""
    return call.reply(200, reports.me(call.principal))


@router.get("/reports/recent-attempts", params=RecentParams, replies=[Reply(200, RecentAttempts)])
async def recent_attempts(call: Call[RecentParams, None], reports: ReportService) -> Response:
    """Completed attempts, newest first, by keyset cursor (admins; managers: their team)."""
    p = call.params
    page = reports.recent_attempts(
        call.principal,
        since=p.since,
        until=p.until,
        scenario_id=p.scenario_id,
        limit=p.limit,
        cursor=p.cursor,
    )
    return call.reply(200, page)


@router.get("/reports/digest", replies=[Reply(200, DigestSettings)], errors=(404,))
async def get_digest(call: Call[None, None], reports: ReportService) -> Response:
    """Whether the caller receives the weekly team digest."""
    return call.reply(200, reports.digest_settings(call.principal))


@router.put(
    "/reports/digest", body=DigestSettingsBody, replies=[Reply(200, DigestSettings)], errors=(404,)
)
async def put_digest(call: Call[None, DigestSettingsBody], reports: ReportService) -> Response:
    """Opt out of (or back into) the weekly team digest."""
    return call.reply(200, reports.set_digest(call.principal, call.body.opt_out))

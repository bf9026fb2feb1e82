"""What the reporting domain takes and gives: refresh runs, the dashboards, the
digest settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from practice.core.model import Model, Rendered

RunStatus = Literal["running", "succeeded", "failed", "skipped"]


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


# -- refresh ------------------------------------------------------------------


class RefreshRequest(_Strict):
    """`POST /reports/refresh`: fold in what changed, or rebuild everything."""

    full: bool = Field(default=False, description="recompute every slice (after a lost log)")


class RefreshRun(Model):
    """One refresh of the reporting summaries."""

    id: int
    status: RunStatus
    trigger: Literal["schedule", "manual"] | None = None
    full_rebuild: bool = False
    requested_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    changes: int | None = Field(default=None, description="change-log rows folded in")
    rows_written: int | None = Field(default=None, description="summary rows written")
    joined_run_id: int | None = Field(
        default=None, description="a skipped run: the run that was working when it came"
    )
    error: str | None = None


# -- dashboards -----------------------------------------------------------------


class Refreshed(Model):
    """When the figures were last refreshed (None: never)."""

    refreshed_at: datetime | None


class DayCount(Model):
    day: date
    attempts: int


class TopScenario(Model):
    scenario_id: UUID
    title: str | None
    attempts: int
    avg_score: float | None


class OrgOverview(Refreshed):
    """`GET /reports/org-overview` (admins)."""

    active_users_this_month: int
    active_users: int
    total_attempts: int
    avg_score: float | None
    last_activity: datetime | None
    attempts_this_week: int
    attempts_this_month: int
    trend_30_days: list[DayCount]
    top_scenarios: list[TopScenario]
    heatmap_365_days: list[DayCount] = Field(description="days with attempts only")


@dataclass(frozen=True, slots=True)
class OverviewPage(Rendered):
    """The org overview as its ``OrgOverview`` document, rendered by PostgreSQL
    (``reports_org_overview_document``, 0033): its 395 day objects are never
    built in Python only to be written again."""

    model: ClassVar = OrgOverview

    body: bytes


class LeaderboardRow(Model):
    rank: int
    user_id: str
    name: str | None
    avg_score: float | None
    attempts: int
    total_duration: int | None
    avg_talk_percentage: float | None
    previous_avg_score: float | None
    change: float | None = Field(description="avg_score minus last month's")
    previous_rank: int | None


class Leaderboard(Refreshed):
    """`GET /reports/leaderboard`."""

    month: str
    scope: Literal["org", "team"]
    team: str | None
    rows: list[LeaderboardRow]


@dataclass(frozen=True, slots=True)
class LeaderboardPage(Rendered):
    """A leaderboard as its ``Leaderboard`` document, ranked and rendered by
    PostgreSQL (``reports_leaderboard_document``, 0033)."""

    model: ClassVar = Leaderboard

    body: bytes


class TeamReport(Refreshed):
    """`GET /reports/team` (managers)."""

    manager_user_id: str
    members: int
    avg_score: float | None
    assignments: int
    assignments_completed: int
    completion_rate: float | None
    rank: int | None
    teams: int


class AssignmentProgress(Model):
    scenario_id: UUID
    title: str | None
    assigned: int
    completed: int
    completion_percent: float
    overdue: int


class OverdueAssignment(Model):
    assignment_id: UUID
    scenario_id: UUID
    assignee_user_id: str
    due_at: datetime
    required: bool


class AssignmentsReport(Refreshed):
    """`GET /reports/assignments` (managers, admins)."""

    scenarios: list[AssignmentProgress]
    overdue: list[OverdueAssignment]


class ScenarioInsight(Model):
    scenario_id: UUID
    title: str | None
    attempt_count: int
    avg_score: float | None
    score_stddev: float | None
    median_score: float | None
    avg_duration: float | None
    last_attempted: datetime | None
    high_variance: bool


class ScenarioInsights(Refreshed):
    """`GET /reports/scenario-insights` (admins, managers)."""

    high_variance_stddev: float
    scenarios: list[ScenarioInsight]


class AttemptLine(Model):
    attempt_id: UUID
    user_id: str
    scenario_id: UUID | None
    title: str | None
    score: float | None
    duration_seconds: int | None
    started_at: datetime
    ended_at: datetime | None


class MonthScore(Model):
    month: str
    avg_score: float | None
    attempts: int


class UpcomingAssignment(Model):
    assignment_id: UUID
    scenario_id: UUID
    title: str | None
    due_at: datetime | None
    required: bool


class MyReport(Refreshed):
    """`GET /reports/me`."""

    attempts_this_week: int
    avg_score: float | None
    score_trend: list[MonthScore]
    last_attempts: list[AttemptLine]
    upcoming_assignments: list[UpcomingAssignment]


class RecentAttempts(Refreshed):
    """`GET /reports/recent-attempts`: a page, newest first."""

    items: list[AttemptLine]
    next_cursor: str | None


class DigestSettings(Model):
    """`GET|PUT /reports/digest`: the caller's weekly digest."""

    opt_out: bool


class DigestSettingsBody(_Strict):
    opt_out: bool

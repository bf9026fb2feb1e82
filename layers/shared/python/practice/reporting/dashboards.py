"""The dashboards: read from the warehouse (the rpt_* summaries, the org-scoped
v_* views, the fact and dim tables), never from the attempts themselves.

Who sees what: row-level security filters every read by the caller's org and
member rule (a trainee their own rows, a manager their team's, an admin the
org's); each dashboard also names the roles it serves. Cached per container
for the settings' TTLs, under keys that carry the org (the cache's own rule)
and the caller's scope: the role, and the user where the figures are theirs
or their team's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from practice.core.cache import MISSING, TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Forbidden, Invalid, NotFound
from practice.core.identity import Principal, Role
from practice.reporting.models import (
    AssignmentProgress,
    AssignmentsReport,
    AttemptLine,
    DigestSettings,
    LeaderboardPage,
    MonthScore,
    MyReport,
    OverdueAssignment,
    OverviewPage,
    RecentAttempts,
    ScenarioInsight,
    ScenarioInsights,
    TeamReport,
    UpcomingAssignment,
)

REFRESHED_AT = "select reports_refreshed_at() as refreshed_at"

# PL/pgSQL functions (0032, 0033): their statements' plans stay on the connection;
# the two largest answers, the overview and the leaderboard, come as the JSON
# documents the routes send.
OVERVIEW = "select reports_org_overview_document(%(today)s, %(top)s) as document"
LEADERBOARD = (
    "select reports_leaderboard_document(%(month)s, %(previous)s, %(manager)s, %(month_text)s,"
    " %(scope)s) as document"
)
MY_REPORT = "select * from reports_me(%(week_start)s, %(since)s)"
TEAM_FIGURES = "select * from reports_team_figures(%(manager)s)"
TEAM_RANKS = "select * from reports_team_ranks(%(from)s, %(to)s)"
# An org's assignments (manager null) or a manager's team's: current direct reports.
ASSIGNMENTS = "select * from reports_assignments(%(manager)s)"
INSIGHTS = "select * from reports_scenario_insights()"


ATTEMPT_LINE = """
select f.attempt_id, f.user_id, f.scenario_id, s.title, f.score, f.duration_seconds,
       f.started_at, f.ended_at
  from fact_scenario_attempts f
  left join dim_scenarios s on s.scenario_id = f.scenario_id
"""
# Recent attempts: only the filters the caller set, so the statement's cached
# generic plan (the pool prepares it) walks idx_fact_attempts_org_started
# newest first and stops at the page; "(%(x)s is null or ...)" catch-alls made
# the planner think one row matched and sort the org's every fact.
RECENT_FILTERS = {
    "manager": "f.user_id in (select m.user_id from org_members m"
    " where m.org_id = (select practice_org()) and m.manager_user_id = %(manager)s"
    " and m.deleted_at is null)",
    "from": "f.started_at >= %(from)s",
    "to": "f.started_at < %(to)s",
    "scenario": "f.scenario_id = %(scenario)s",
    "after_at": "(f.started_at, f.attempt_id) < (%(after_at)s, %(after_id)s::uuid)",
}


def recent_statement(filters: dict[str, Any]) -> str:
    """The recent-attempts page over the filters that are set (their names only
    shape the text; every value stays a parameter)."""
    conditions = ["f.org_id = (select practice_org())"]
    conditions += [sql for name, sql in RECENT_FILTERS.items() if filters.get(name) is not None]
    return (
        ATTEMPT_LINE
        + " where "
        + "\n   and ".join(conditions)
        + "\n order by f.started_at desc, f.attempt_id desc\n limit %(limit)s"
    )


MY_DIGEST = """
select digest_opt_out as opt_out from org_members
 where org_id = (select practice_org()) and user_id = (select practice_user())
"""
SET_DIGEST = "select reports_set_digest_opt_out(%(opt_out)s) as opt_out"


def _today() -> date:
    return datetime.now(UTC).date()


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _previous_month(month: date) -> date:
    return _month_start(month - timedelta(days=1))


def _as_instant(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_month(text: str | None) -> date:
    """``YYYY-MM`` (this UTC month when absent) as its first day."""
    if text is None:
        return _month_start(_today())
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise Invalid("month must be YYYY-MM", field="query.month") from None


def encode_cursor(started_at: datetime, attempt_id: UUID) -> str:
    raw = f"{started_at.isoformat()}|{attempt_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, attempt = raw.partition("|")
        return datetime.fromisoformat(at), UUID(attempt)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("the cursor is not one this API gave", field="query.cursor") from None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class ReportService:
    """The dashboards, cached per container."""

    db: Database
    cache: TenantCache
    settings: Settings

    def _cached[T](self, principal: Principal, key: tuple, ttl: float, build: Callable[[], T]) -> T:
        org = principal.org_id
        if org is None:
            raise Forbidden("reports need an org")
        scope = (principal.role.value, principal.user_id)
        found = self.cache.get(org, (*key, *scope))
        if found is not MISSING:
            return found
        value = build()
        self.cache.set(org, (*key, *scope), value, ttl, tags=("reports",))
        return value

    def _reads(
        self, principal: Principal, *statements: tuple[str, dict[str, Any] | None]
    ) -> tuple[datetime | None, list[list[dict[str, Any]]]]:
        """When the summaries were refreshed, and each statement's rows: one
        transaction, one round trip (the statements travel in one pipeline and
        their rows are read after the commit)."""

        def queue(conn: Any) -> list[Any]:
            return [conn.execute(REFRESHED_AT)] + [conn.execute(q, p) for q, p in statements]

        cursors = self.db.run(principal, queue)
        refreshed, *rows = [cursor.fetchall() for cursor in cursors]
        return refreshed[0]["refreshed_at"], rows

    # -- org overview ------------------------------------------------------------

    def org_overview(self, principal: Principal) -> OverviewPage:
        principal.require(Role.ADMIN)
        ttl = self.settings.reports_ttl_overview
        return self._cached(principal, ("overview",), ttl, lambda: self._overview(principal))

    def _overview(self, principal: Principal) -> OverviewPage:
        (row,) = self.db.query(principal, OVERVIEW, {"today": _today(), "top": 5})
        return OverviewPage(row["document"].encode())

    # -- leaderboard -------------------------------------------------------------

    def leaderboard(
        self, principal: Principal, month: date, scope: str | None, team: str | None
    ) -> LeaderboardPage:
        principal.require(Role.ADMIN, Role.MANAGER)
        if scope is None:
            scope = "team" if principal.role is Role.MANAGER or team is not None else "org"
        if principal.role is Role.MANAGER:
            if scope == "org":
                raise Forbidden("a manager sees their team's leaderboard (scope=team)")
            if team not in (None, principal.user_id):
                raise Forbidden("a manager sees their own team only")
            team = principal.user_id
        if scope == "org":
            team = None
        elif team is None:
            raise Invalid("scope=team needs team=<manager's user id>", field="query.team")
        key = ("leaderboard", month.isoformat(), scope, team)
        ttl = self.settings.reports_ttl_leaderboard
        return self._cached(
            principal, key, ttl, lambda: self._leaderboard(principal, month, scope, team)
        )

    def _leaderboard(
        self, principal: Principal, month: date, scope: str, team: str | None
    ) -> LeaderboardPage:
        params = {
            "month": _as_instant(month),
            "previous": _as_instant(_previous_month(month)),
            "manager": team,
            "month_text": month.strftime("%Y-%m"),
            "scope": scope,
        }
        (row,) = self.db.query(principal, LEADERBOARD, params)
        return LeaderboardPage(row["document"].encode())

    # -- team ------------------------------------------------------------------

    def team(self, principal: Principal) -> TeamReport:
        principal.require(Role.MANAGER)
        ttl = self.settings.reports_ttl_default
        return self._cached(principal, ("team",), ttl, lambda: self._team_report(principal))

    def _team_report(self, principal: Principal) -> TeamReport:
        month = _month_start(_today())
        next_month = _month_start(month + timedelta(days=32))
        refreshed, (ranks, (figures,)) = self._reads(
            principal,
            (TEAM_RANKS, {"from": month, "to": next_month}),
            (TEAM_FIGURES, {"manager": principal.user_id}),
        )
        mine = next((r for r in ranks if r["manager_user_id"] == principal.user_id), None)
        return TeamReport(
            refreshed_at=refreshed,
            manager_user_id=principal.user_id,
            members=figures["members"],
            avg_score=_float(mine and mine["avg_score"]),
            assignments=figures["assignments"],
            assignments_completed=figures["completed"],
            completion_rate=figures["completed"] / figures["assignments"]
            if figures["assignments"]
            else None,
            rank=mine["rank"] if mine else None,
            teams=len(ranks),
        )

    # -- assignments -------------------------------------------------------------

    def assignments(self, principal: Principal) -> AssignmentsReport:
        principal.require(Role.ADMIN, Role.MANAGER)
        ttl = self.settings.reports_ttl_default
        return self._cached(principal, ("assignments",), ttl, lambda: self._assignments(principal))

    def _assignments(self, principal: Principal) -> AssignmentsReport:
        manager = principal.user_id if principal.role is Role.MANAGER else None
        refreshed, (rows,) = self._reads(principal, (ASSIGNMENTS, {"manager": manager}))
        now = datetime.now(UTC)
        by_scenario: dict[UUID, dict[str, Any]] = {}
        overdue = []
        for row in rows:
            entry = by_scenario.setdefault(
                row["scenario_id"],
                {"title": row["title"], "assigned": 0, "completed": 0, "overdue": 0},
            )
            entry["assigned"] += 1
            if row["completed_at"] is not None:
                entry["completed"] += 1
            elif row["due_at"] is not None and row["due_at"] < now:
                entry["overdue"] += 1
                overdue.append(
                    OverdueAssignment(
                        assignment_id=row["id"],
                        scenario_id=row["scenario_id"],
                        assignee_user_id=row["assignee_user_id"],
                        due_at=row["due_at"],
                        required=row["required"],
                    )
                )
        return AssignmentsReport(
            refreshed_at=refreshed,
            scenarios=[
                AssignmentProgress(
                    scenario_id=scenario,
                    title=e["title"],
                    assigned=e["assigned"],
                    completed=e["completed"],
                    completion_percent=round(100 * e["completed"] / e["assigned"], 1),
                    overdue=e["overdue"],
                )
                for scenario, e in by_scenario.items()
            ],
            overdue=overdue,
        )

    # -- scenario insights -------------------------------------------------------

    def scenario_insights(self, principal: Principal) -> ScenarioInsights:
        principal.require(Role.ADMIN, Role.MANAGER)
        ttl = self.settings.reports_ttl_insights
        # The same figures for every coach of the org: one entry per org.
        return self._cached(
            Principal("coaches", principal.org_id, Role.ADMIN),
            ("insights",),
            ttl,
            lambda: self._insights(principal),
        )

    def _insights(self, principal: Principal) -> ScenarioInsights:
        threshold = self.settings.reports_high_variance_stddev
        refreshed, (rows,) = self._reads(principal, (INSIGHTS, None))
        return ScenarioInsights(
            refreshed_at=refreshed,
            high_variance_stddev=threshold,
            scenarios=[
                ScenarioInsight(
                    scenario_id=r["scenario_id"],
                    title=r["title"],
                    attempt_count=r["attempt_count"],
                    avg_score=_float(r["avg_score"]),
                    score_stddev=_float(r["score_stddev"]),
                    median_score=r["median_score"],
                    avg_duration=_float(r["avg_duration"]),
                    last_attempted=r["last_attempted"],
                    high_variance=r["score_stddev"] is not None
                    and float(r["score_stddev"]) >= threshold,
                )
                for r in rows
            ],
        )

    # -- me --------------------------------------------------------------------

    def me(self, principal: Principal) -> MyReport:
        if principal.role is Role.SYSTEM:
            raise Forbidden("the system has no figures of its own")
        ttl = self.settings.reports_ttl_default
        return self._cached(principal, ("me",), ttl, lambda: self._me(principal))

    def _me(self, principal: Principal) -> MyReport:
        today = _today()
        since = _month_start(_month_start(today) - timedelta(days=150))
        refreshed, ((row,),) = self._reads(
            principal,
            (MY_REPORT, {"week_start": today - timedelta(days=6), "since": _as_instant(since)}),
        )
        return MyReport(
            refreshed_at=refreshed,
            attempts_this_week=row["attempts_this_week"],
            avg_score=_float(row["avg_score"]),
            score_trend=[MonthScore.model_validate(m) for m in row["months"]],
            last_attempts=[AttemptLine.model_validate(a) for a in row["last_attempts"]],
            upcoming_assignments=[UpcomingAssignment.model_validate(u) for u in row["upcoming"]],
        )

    # -- recent attempts ---------------------------------------------------------

    def recent_attempts(
        self,
        principal: Principal,
        *,
        since: datetime | None,
        until: datetime | None,
        scenario_id: UUID | None,
        limit: int,
        cursor: str | None,
    ) -> RecentAttempts:
        principal.require(Role.ADMIN, Role.MANAGER)
        manager = principal.user_id if principal.role is Role.MANAGER else None
        after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
        filters = {
            "manager": manager,
            "from": since,
            "to": until,
            "scenario": scenario_id,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit + 1,
        }
        refreshed, (rows,) = self._reads(principal, (recent_statement(filters), filters))
        page = [AttemptLine.model_validate(r) for r in rows[:limit]]
        more = len(rows) > limit
        return RecentAttempts(
            refreshed_at=refreshed,
            items=page,
            next_cursor=encode_cursor(page[-1].started_at, page[-1].attempt_id) if more else None,
        )

    # -- the digest's opt-out ----------------------------------------------------

    def digest_settings(self, principal: Principal) -> DigestSettings:
        rows = self.db.query(principal, MY_DIGEST)
        if not rows:
            raise NotFound("the caller has no membership here")
        return DigestSettings(opt_out=rows[0]["opt_out"])

    def set_digest(self, principal: Principal, opt_out: bool) -> DigestSettings:
        rows = self.db.query(principal, SET_DIGEST, {"opt_out": opt_out}, idempotent=True)
        if rows[0]["opt_out"] is None:
            raise NotFound("the caller has no membership here")
        return DigestSettings(opt_out=rows[0]["opt_out"])

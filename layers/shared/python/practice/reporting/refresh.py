"""Refresh runs of the reporting summaries (sql/migrations/0026): fold in the
logged changes, or rebuild everything; a run that finds another working skips
and names it."""

from __future__ import annotations

from dataclasses import dataclass

from practice.core.db import Database
from practice.core.errors import NotFound
from practice.core.identity import Principal, Role
from practice.reporting.models import RefreshRun

REFRESH = """
select id, status, trigger, full_rebuild, requested_by, started_at, finished_at, duration_ms,
       changes, rows_written, joined_run_id, error
  from refresh_reporting_views(%(trigger)s, %(requested_by)s, full => %(full)s)
"""

RUN = """
select id, status, trigger, full_rebuild, requested_by, started_at, finished_at, duration_ms,
       changes, rows_written, joined_run_id, error
  from refresh_runs where id = %(id)s
"""

WORKING = "select refresh_run_working(%(id)s) as working"


@dataclass
class RefreshService:
    """Starts refresh runs and reports on them (admins and the system)."""

    db: Database

    def run(self, principal: Principal, *, full: bool = False) -> RefreshRun:
        """A run: worked (succeeded or failed), or skipped naming the working one."""
        principal.require(Role.ADMIN, Role.SYSTEM)
        trigger = "schedule" if principal.role is Role.SYSTEM else "manual"
        params = {"trigger": trigger, "requested_by": principal.user_id, "full": full}
        row = self.db.run(principal, lambda conn: conn.execute(REFRESH, params).fetchone())
        return RefreshRun.model_validate(row)

    def get(self, principal: Principal, run_id: int) -> RefreshRun:
        """A run by id; one still working (not yet committed) answers ``running``."""
        principal.require(Role.ADMIN, Role.SYSTEM)
        rows = self.db.query(principal, RUN, {"id": run_id})
        if rows:
            return RefreshRun.model_validate(rows[0])
        if self.db.query(principal, WORKING, {"id": run_id})[0]["working"]:
            return RefreshRun(id=run_id, status="running")
        raise NotFound(f"no refresh run {run_id}")

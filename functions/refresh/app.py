"""The warehouse refresh: EventBridge schedules fold in what changed (every 15
minutes by default) and rebuild everything nightly (02:00 UTC); admins ask for
a run with ``POST /reports/refresh`` (routes in ``practice.web.api.refresh``).

Its contract is served at ``/reports/refresh/openapi.json`` (and ``…/docs``).
"""

from __future__ import annotations

from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.directory import Principals
from practice.events import Scheduled, on_schedule
from practice.events.mixed import http_or_schedule
from practice.reporting.refresh import RefreshService
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import refresh as refresh_routes

settings = get_settings()
# A refresh may run longer statements than a request (a full rebuild).
db = Database(
    settings.model_copy(update={"db_statement_timeout_ms": settings.refresh_statement_timeout_ms})
)
db.open()
refresh = RefreshService(db)
api = create_api(
    title="Practice reporting refresh API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(Principals(db, settings.cache_ttl_org), settings),
    docs_prefix="/reports/refresh",
)
api.include(refresh_routes.router, refresh=refresh)


def _run(run: Scheduled, *, full: bool) -> dict[str, object]:
    done = refresh.run(run.principal, full=full)
    if done.status == "failed":
        # A failed run keeps the summaries as they were; failing the invocation
        # retries it and raises the function's alarms.
        raise RuntimeError(f"refresh run {done.id} failed: {done.error}")
    return done.model_dump(mode="json", exclude_none=True)


def refresh_changes(run: Scheduled) -> dict[str, object]:
    """Fold the changes logged since the last run into the summaries."""
    return _run(run, full=False)


def rebuild_all(run: Scheduled) -> dict[str, object]:
    """Recompute every summary slice (writes only the rows that differ)."""
    return _run(run, full=True)


handler = http_or_schedule(
    create_handler(
        api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
    ),
    on_schedule({"refresh": refresh_changes, "rebuild": rebuild_all}, budget_seconds=110),
)

"""The consolidated attempt endpoint: its singletons, its routes and its Lambda
handler. Each feature's routes live in ``practice.web.api.<feature>``: the
attempt lifecycle (``attempts``), a learner's history (``tracking``), the
scenario catalog (``scenarios``) and chat-session progress (``chat_sessions``)."""

from __future__ import annotations

from practice.attempts.cache_admin import CacheAdmin
from practice.attempts.recordings import RecordingService
from practice.attempts.service import AttemptService
from practice.chat_progress.service import ChatProgressService
from practice.core.cache import TenantCache
from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.core.directory import Principals
from practice.scenarios.service import ScenarioService
from practice.tracking.service import TrackingService
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import attempts as attempt_routes
from practice.web.api import chat_sessions as chat_session_routes
from practice.web.api import scenarios as scenario_routes
from practice.web.api import tracking as tracking_routes

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
principals = Principals(db, settings.cache_ttl_org)
attempts = AttemptService(db, cache, settings)
recordings = RecordingService(db, cache, settings)
cache_admin = CacheAdmin(db, attempts, settings.query_report_database_wide)
tracking = TrackingService(db, cache, settings)
scenarios = ScenarioService(db)
chat_sessions = ChatProgressService(db)
api = create_api(
    title="Practice attempts API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(principals, settings),
    idempotency=Dedupe(db, settings.idempotency_ttl_seconds),
)
api.include(
    attempt_routes.router,
    db=db,
    attempts=attempts,
    recordings=recordings,
    cache_admin=cache_admin,
)
api.include(tracking_routes.router, tracking=tracking)
api.include(scenario_routes.router, scenarios=scenarios)
api.include(chat_session_routes.router, chat_sessions=chat_sessions)

handler = create_handler(
    api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

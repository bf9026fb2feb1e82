"""The dashboards over HTTP (routes in ``practice.web.api.reports``) and the
weekly manager digest on its EventBridge schedule (Monday 07:00 UTC by
default), sent through SES.

Its contract is served at ``/reports/openapi.json`` (and ``…/docs``).
"""

from __future__ import annotations

import boto3

from practice.core.cache import TenantCache
from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.core.directory import Principals
from practice.events import Scheduled, on_schedule
from practice.events.mixed import http_or_schedule
from practice.reporting.dashboards import ReportService
from practice.reporting.digest import DigestService, ses_sender
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import reports as report_routes

settings = get_settings()
db = Database(settings)
db.open()
reports = ReportService(db, TenantCache(maxsize=settings.cache_max_entries), settings)
digests = DigestService(
    db,
    Dedupe(db, settings.digest_dedupe_ttl_seconds),
    ses_sender(
        boto3.client("sesv2", endpoint_url=settings.ses_endpoint_url), settings.digest_sender
    ),
)
api = create_api(
    title="Practice reports API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(Principals(db, settings.cache_ttl_org), settings),
    docs_prefix="/reports",
)
api.include(report_routes.router, reports=reports)


def weekly_digest(run: Scheduled) -> dict[str, int]:
    """Each manager's digest of the week that ended, once per manager and week."""
    return digests.run(run.at).counts()


handler = http_or_schedule(
    create_handler(
        api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
    ),
    on_schedule({"weekly-digest": weekly_digest}, budget_seconds=250),
)

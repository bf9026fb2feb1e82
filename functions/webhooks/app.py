"""The webhooks function: Clerk and Vapi deliveries (``practice.web.api.webhooks``)
and its Lambda handler."""

from __future__ import annotations

from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.directory import Principals
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import webhooks as webhook_routes
from practice.webhooks.secrets import WebhookSecrets
from practice.webhooks.service import WebhookService

settings = get_settings()
db = Database(settings)
db.open()
principals = Principals(db, settings.cache_ttl_org)
webhooks = WebhookService(db, settings, WebhookSecrets(settings))
api = create_api(
    title="Practice webhooks API",
    max_body_bytes=settings.webhook_max_body_bytes,
    principal_of=PrincipalOf(principals, settings),
    docs_prefix="/webhooks",
)
api.include(webhook_routes.router, webhooks=webhooks)

handler = create_handler(
    api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

"""The retry of webhook deliveries whose processing failed or got stuck, on a
schedule (template.yaml), as the system principal."""

from __future__ import annotations

from practice.core.config import get_settings
from practice.core.db import Database
from practice.events import Scheduled, on_schedule
from practice.webhooks.secrets import WebhookSecrets
from practice.webhooks.service import WebhookService

settings = get_settings()
db = Database(settings)
db.open()
webhooks = WebhookService(db, settings, WebhookSecrets(settings))


def retry_webhooks(run: Scheduled) -> dict[str, int]:
    """Process again each failed or stuck delivery whose backoff is over."""
    return webhooks.retry_due(run.principal)


handler = on_schedule({"retry-webhooks": retry_webhooks}, budget_seconds=50)

"""Scheduled maintenance: the jobs no member asks for, each on its schedule
(template.yaml), run as the system principal."""

from __future__ import annotations

from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.events import Scheduled, on_schedule

settings = get_settings()
db = Database(settings)
db.open()
dedupe = Dedupe(db, settings.idempotency_ttl_seconds)


def sweep_dedupe(run: Scheduled) -> dict[str, int]:
    """Delete the dedupe records whose time is up, of every scope and org."""
    return {"deleted": dedupe.sweep(run.principal)}


handler = on_schedule({"sweep-dedupe": sweep_dedupe}, budget_seconds=50)

"""Liveness of the function and its database, as a load balancer needs it."""

from __future__ import annotations

from typing import Literal

from practice.core.db import Database
from practice.core.model import Model


class HealthReport(Model):
    """Whether the function can serve. Nothing about its internals: it needs no token."""

    status: Literal["ok", "unavailable"]


def health_report(db: Database) -> HealthReport:
    """Ask the database itself (not the breaker), so the answer is the truth and a
    successful check closes the breaker at once."""
    return HealthReport(status="ok" if db.probe() else "unavailable")

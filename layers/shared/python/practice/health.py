"""Liveness of the function and its database."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from practice.db import Database
from practice.errors import Unavailable


class HealthReport(BaseModel):
    """Whether the function can serve: its database, pool and breaker."""

    status: str
    database: str
    pool: dict[str, Any]
    breaker: dict[str, Any]

    @property
    def healthy(self) -> bool:
        """True when the database answered."""
        return self.database == "ok"


def health_report(db: Database) -> HealthReport:
    """Whether the database answers, with pool and breaker state."""
    try:
        db.query(None, "select 1")
        database = "ok"
    except Unavailable as exc:
        database = f"unavailable: {exc.detail}"
    status = "ok" if database == "ok" else "degraded"
    return HealthReport(status=status, database=database, **db.stats())

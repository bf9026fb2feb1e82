"""What the webhook routes answer, and the deliveries as stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["received", "processed", "ignored", "failed"]


class Acknowledged(BaseModel):
    """A delivery's fate: processed, ignored (with why), a repeat of a stored
    one, or received (stored; processing failed and the retry schedule will
    process it)."""

    outcome: Literal["processed", "ignored", "repeat", "received"]
    event_id: int | None = Field(default=None, description="the stored delivery's id")
    reason: str | None = None


class Envelope(BaseModel):
    """A provider's JSON body (documentation only: the route reads the raw bytes)."""

    model_config = ConfigDict(extra="allow")


class StoredEvent(BaseModel):
    """One stored delivery, as an admin sees it."""

    id: int
    source: Literal["vapi", "clerk"]
    event_type: str
    subject: str | None = None
    received_at: datetime
    processed_at: datetime | None = None
    outcome: Outcome
    reason: str | None = None
    error: str | None = None
    attempts: int


class StoredEvents(BaseModel):
    """Recent deliveries of the caller's org, newest first."""

    items: list[StoredEvent]
    next_cursor: str | None = None


class Incoming(BaseModel):
    """A verified delivery, ready to be stored."""

    source: Literal["vapi", "clerk"]
    event_id: str
    event_type: str
    subject: str | None
    occurred_ms: int | None
    payload: dict[str, Any]

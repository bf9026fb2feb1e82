"""Request bodies of the attempt endpoint, validated with pydantic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

# The activity a client may log. A closed set keeps the log queryable: the
# reporting side counts these names, and a typo would silently split a series.
ActivityType = Literal[
    "answer_changed",
    "autosave",
    "call_connected",
    "call_ended",
    "call_started",
    "focus_gained",
    "focus_lost",
    "hint_viewed",
    "idle",
    "navigation",
    "note_added",
    "recording_started",
    "recording_stopped",
    "resumed",
    "client_error",
]
MAX_ACTIVITY_EVENTS = 100
CLOCK_SKEW = timedelta(minutes=5)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartAttempt(_Strict):
    """`POST /attempts`."""

    scenario_id: UUID
    assignment_id: UUID | None = None
    vapi_call_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SaveAttempt(_Strict):
    """`PATCH /attempts/{id}?action=save`: the autosave."""

    answers: dict[str, Any] | None = None
    auto_save_data: dict[str, Any] | None = None
    expected_version: int | None = Field(default=None, ge=1)


class ActivityEvent(_Strict):
    """One entry of the attempt's activity log."""

    event_type: ActivityType
    payload: dict[str, Any] = Field(default_factory=dict)
    # With a zone, so it means one instant whatever the server's time zone.
    occurred_at: AwareDatetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        # Client clocks drift; a few minutes ahead is tolerated, more is a bug.
        if value is not None and value > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at is in the future")
        return value


class ActivityBatch(_Strict):
    """`POST /attempts/{id}?action=activity`: ``{"events": [...]}`` or the bare list."""

    events: list[ActivityEvent] = Field(min_length=1, max_length=MAX_ACTIVITY_EVENTS)

    @model_validator(mode="before")
    @classmethod
    def _accept_a_bare_list(cls, value: Any) -> Any:
        return {"events": value} if isinstance(value, list) else value


class SubmitAttempt(_Strict):
    """`POST /attempts/{id}?action=submit`. Score fields are for coaches only."""

    status: Literal["completed", "abandoned"] = "completed"
    answers: dict[str, Any] | None = None
    transcript_text: str | None = None
    score: Decimal | None = Field(
        default=None, ge=0, le=100, max_digits=6, decimal_places=3, allow_inf_nan=False
    )
    score_breakdown: dict[str, Any] | None = None
    kpis: dict[str, Any] | None = None
    feedback_text: str | None = None
    feedback_json: dict[str, Any] | None = None
    manager_comments: str | None = None

    SCORING_FIELDS: ClassVar[tuple[str, ...]] = (
        "score",
        "score_breakdown",
        "kpis",
        "feedback_text",
        "feedback_json",
        "manager_comments",
    )

    def scoring_fields_sent(self) -> list[str]:
        """The scoring fields the caller set, by name."""
        return [name for name in self.SCORING_FIELDS if getattr(self, name) is not None]


class RequestUpload(_Strict):
    """`POST /attempts/{id}?action=upload` step 1: ask for a presigned POST."""

    step: Literal["request"] = "request"
    content_type: str = Field(min_length=3, max_length=100)
    size_bytes: int = Field(gt=0)


class ConfirmUpload(_Strict):
    """`POST /attempts/{id}?action=upload` step 2: the object is there, record it."""

    step: Literal["confirm"]
    key: str = Field(min_length=1, max_length=1024)


class Optimize(_Strict):
    """`PATCH /attempts/{id}?action=optimize` (admins): clear or preload the cache."""

    operation: Literal["clear_cache", "preload"]
    attempt_ids: list[UUID] = Field(default_factory=list, max_length=100)

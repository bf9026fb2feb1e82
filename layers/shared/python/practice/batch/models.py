"""What the batch operations take and give: ``{"operation", "data"}`` requests,
one outcome per item in request order, and a summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import BeforeValidator, ConfigDict, Field

from practice.attempts.models import (
    ActivityEvent,
    AttemptInfo,
    AttemptResult,
    AttemptState,
    AttemptStatus,
    ScenarioStatistics,
)
from practice.attempts.rules import MAX_ACTIVITY_EVENTS
from practice.core.model import Document, Model

Operation = Literal[
    "batch_save", "multiple_states", "batch_activity", "validate", "batch_submit", "mixed_reads"
]
OPERATIONS: tuple[str, ...] = get_args(Operation)
# Items per request: a bound keeps one statement's locks
# and the answer in proportion. Part of the contract (maxItems); a request over
# it is refused naming the limit (practice.batch.service).
MAX_BATCH_ITEMS = 100


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


# -- inputs -------------------------------------------------------------------


def _items(**constraints: Any) -> Any:
    # maxItems is documented here and enforced by the service, which names the limit.
    return Field(min_length=1, json_schema_extra={"maxItems": MAX_BATCH_ITEMS}, **constraints)


class BatchEnvelope(_Strict):
    """A batch request whose operation is none of the six: refused naming them."""

    operation: Operation
    data: list[Any] = _items()


class SaveItem(_Strict):
    """One autosave of ``batch_save``."""

    attempt_id: UUID
    answers: Document | None = None
    auto_save_data: Document | None = None
    expected_version: int = Field(ge=1, le=2_147_483_647)


class ActivityItem(_Strict):
    """One attempt's events in ``batch_activity``."""

    attempt_id: UUID
    events: list[ActivityEvent] = Field(min_length=1, max_length=MAX_ACTIVITY_EVENTS)


class SubmitItem(_Strict):
    """One submit of ``batch_submit`` (a bare id submits it as completed)."""

    attempt_id: UUID
    status: Literal["completed", "abandoned"] = "completed"


class BatchSave(_Strict):
    """`batch_save`: autosave many attempts, each on its own expected version."""

    operation: Literal["batch_save"]
    data: list[SaveItem] = _items()


class MultipleStates(_Strict):
    """`multiple_states`: the working states of many attempts."""

    operation: Literal["multiple_states"]
    data: list[UUID] = _items()


class BatchActivity(_Strict):
    """`batch_activity` (batch_log_attempt_activity)."""

    operation: Literal["batch_activity"]
    data: list[ActivityItem] = _items()


class ValidateAttempts(_Strict):
    """`validate` (validate_multiple_attempts): can each be submitted?"""

    operation: Literal["validate"]
    data: list[UUID] = _items()


def _bare_id_as_item(value: Any) -> Any:
    return {"attempt_id": value} if isinstance(value, str) else value


# An item is an id or an object; read as the object either way, so a refusal
# names the item's field (body.data.0.status), not a branch of a union.
SubmitEntry = Annotated[
    SubmitItem, BeforeValidator(_bare_id_as_item, json_schema_input_type=UUID | SubmitItem)
]


class BatchSubmit(_Strict):
    """`batch_submit` (batch_submit_attempts): ids, or items with a status."""

    operation: Literal["batch_submit"]
    data: list[SubmitEntry] = _items()


class ReadItem(_Strict):
    """One read of ``mixed_reads``: the attempt's working state, its info, or its
    scenario's statistics (as the single endpoint's state, info and stats)."""

    type: Literal["state", "info", "stats"]
    attempt_id: UUID


class MixedReads(_Strict):
    """`mixed_reads` (optimizeAttemptQueries): states, infos and statistics of
    different attempts, answered in request order from one statement."""

    operation: Literal["mixed_reads"]
    data: list[ReadItem] = _items()


BatchRequest = (
    BatchSave | MultipleStates | BatchActivity | ValidateAttempts | BatchSubmit | MixedReads
)
REQUESTS: dict[str, type[BatchRequest]] = {
    "batch_save": BatchSave,
    "multiple_states": MultipleStates,
    "batch_activity": BatchActivity,
    "validate": ValidateAttempts,
    "batch_submit": BatchSubmit,
    "mixed_reads": MixedReads,
}


# -- outcomes -----------------------------------------------------------------


class SaveOutcome(Model):
    """`saved` with the new ``version``; `conflict` or `not_in_progress` with
    ``current_version``; `not_found` (unknown or not visible); `forbidden`
    (visible, not the caller's to write)."""

    attempt_id: UUID
    status: Literal["saved", "conflict", "not_found", "not_in_progress", "forbidden"]
    version: int | None = None
    current_version: int | None = None
    updated_at: datetime | None = None


class StateOutcome(Model):
    """`found` with the attempt's working ``state``, or `not_found`."""

    attempt_id: UUID
    status: Literal["found", "not_found"]
    state: AttemptState | None = None


class ActivityOutcome(Model):
    """`logged` with the ``inserted`` count, or why not (as for a save;
    `out_of_range`: an event said to happen before the attempt or in the future)."""

    attempt_id: UUID
    status: Literal["logged", "not_found", "forbidden", "not_in_progress", "out_of_range"]
    inserted: int = 0
    current_version: int | None = None


# Why a bare submit would not end an attempt now (the submit verdict).
Problem = Literal["not_in_progress", "forbidden"]
# What a client may want to settle before submitting; none stops a submit.
Warning = Literal["no_answers", "recording_in_progress", "recording_unconfirmed"]


class ValidationOutcome(Model):
    """What a submit of the attempt would do now: `valid` (it would end it),
    `invalid` with the ``problems`` that would refuse it, or `not_found`;
    ``warnings`` name what a client may want to settle first."""

    attempt_id: UUID
    status: Literal["valid", "invalid", "not_found"]
    can_submit: bool
    problems: list[Problem] = Field(default_factory=list)
    warnings: list[Warning] = Field(default_factory=list)
    attempt_status: AttemptStatus | None = None
    version: int | None = None


class SubmitOutcome(Model):
    """`submitted` (ended by this request), `already_ended` (the stored result, as
    a repeated single submit answers), `conflict` (it had ended otherwise:
    ``changed`` names what can no longer change), `forbidden` (a coach ends a
    trainee's attempt only with status abandoned) or `not_found`."""

    attempt_id: UUID
    status: Literal["submitted", "already_ended", "conflict", "forbidden", "not_found"]
    result: AttemptResult | None = None
    changed: list[str] | None = None
    current_version: int | None = None


class ReadOutcome(Model):
    """One read of ``mixed_reads``: `found` with the single endpoint's reply for
    its ``type`` (``state``, ``info`` or ``stats``), or `not_found` (unknown, or
    not visible to the caller)."""

    attempt_id: UUID
    type: Literal["state", "info", "stats"]
    status: Literal["found", "not_found"]
    state: AttemptState | None = None
    info: AttemptInfo | None = None
    stats: ScenarioStatistics | None = None


class BatchSummary(Model):
    """How many items succeeded and failed."""

    succeeded: int
    failed: int


Outcome = (
    SaveOutcome | StateOutcome | ActivityOutcome | ValidationOutcome | SubmitOutcome | ReadOutcome
)


class BatchResult(Model):
    """One outcome per item, in request order."""

    operation: Operation
    results: list[Outcome]
    summary: BatchSummary


def batch_operation(document: object) -> type[BatchRequest] | type[BatchEnvelope]:
    """The request model a batch body names by its ``operation``."""
    operation = document.get("operation") if isinstance(document, dict) else None
    return REQUESTS.get(operation, BatchEnvelope) if isinstance(operation, str) else BatchEnvelope

"""What the attempt domain takes and gives: request bodies (validated with
pydantic) and typed results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
)

from practice.attempts.rules import MAX_ACTIVITY_EVENTS, ActivityType, Verdict
from practice.core.model import JSON_INTEGER, Document, Model

AttemptStatus = Literal["in_progress", "completed", "abandoned", "failed"]
UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RECORDING_KEY_PATTERN = rf"^recordings/{UUID_TEXT}/{UUID_TEXT}/{UUID_TEXT}\.[a-z0-9.+-]{{1,20}}$"


def _in_utc(value: datetime) -> datetime:
    # PostgreSQL takes offsets up to 15:59, RFC 3339 up to 23:59: the instant
    # travels in UTC. One that Python cannot hold in UTC lies beyond year 1 or
    # 9999, outside any attempt's life: the earliest or latest instant stands
    # for it, and the attempt's rule refuses it as such.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
# A score as a coach sends it: a JSON number from 0 to 100, never a string.
Score = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]
# A version as a client sends it: a JSON integer within PostgreSQL's integer,
# never a string or a boolean that happens to convert.
Version = Annotated[int, Field(ge=1, le=2_147_483_647), JSON_INTEGER]


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


# -- inputs -------------------------------------------------------------------


class StartAttempt(_Strict):
    """`POST /attempts`."""

    scenario_id: UUID
    assignment_id: UUID | None = None
    vapi_call_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: Document = Field(default_factory=dict)


class SaveAttempt(_Strict):
    """`PATCH /attempts/{id}?action=save`: the autosave. The version may come in
    ``If-Match`` instead of ``expected_version``."""

    answers: Document | None = None
    auto_save_data: Document | None = None
    # Documented as required: the schema cannot say "or If-Match", and a save
    # without a version is refused (428). A client of the HTTP preconditions may
    # leave it out and send If-Match instead.
    expected_version: Version = None  # type: ignore[assignment] (absent: If-Match)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["expected_version"]})


class Draft(Model):
    """One autosave as the domain takes it: the drafts and the version they build on."""

    answers: Document | None = None
    auto_save_data: Document | None = None
    expected_version: int


class ActivityEvent(_Strict):
    """One entry of the attempt's activity log."""

    event_type: ActivityType
    payload: Document = Field(default_factory=dict)
    # With a zone, so it means one instant whatever the server's time zone. When
    # it may fall (within the attempt's life) is the attempt's rule (0018).
    occurred_at: Instant | None = None


class ActivityBatch(_Strict):
    """`POST /attempts/{id}?action=activity`: ``{"events": [...]}`` (or the bare list)."""

    events: list[ActivityEvent] = Field(min_length=1, max_length=MAX_ACTIVITY_EVENTS)


def _events_object(value: Any) -> Any:
    return {"events": value} if isinstance(value, list) else value


# The activity body as clients send it: the object, or the bare list of events
# (the shape of a batch_activity item's events). Read as the object either way,
# and documented as both.
ActivityBody = Annotated[
    ActivityBatch,
    BeforeValidator(
        _events_object,
        json_schema_input_type=ActivityBatch
        | Annotated[list[ActivityEvent], Field(min_length=1, max_length=MAX_ACTIVITY_EVENTS)],
    ),
]


class SubmitAttempt(_Strict):
    """`POST /attempts/{id}?action=submit`. Score fields are for coaches only."""

    status: Literal["completed", "abandoned"] = "completed"
    answers: Document | None = None
    transcript_text: str | None = None
    score: Score | None = None
    score_breakdown: Document | None = None
    kpis: Document | None = None
    feedback_text: str | None = None
    feedback_json: Document | None = None
    manager_comments: str | None = None

    def as_item(self) -> dict[str, Any]:
        """What the caller sent, and nothing it did not (the submit verdict tells
        an explicit status from the default)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


# What a recording may be: part of the contract, so a client knows before it
# uploads (the confirm step checks the object against the same).
RecordingType = Literal["audio/mpeg", "audio/wav", "audio/webm", "audio/ogg", "audio/mp4"]
RECORDING_TYPES: tuple[str, ...] = get_args(RecordingType)
RECORDING_MAX_BYTES = 200 * 1024 * 1024


class RequestUpload(_Strict):
    """`POST /attempts/{id}/upload` step 1: ask for a presigned POST."""

    step: Literal["request"] = "request"
    content_type: RecordingType
    size_bytes: Annotated[int, Field(gt=0, le=RECORDING_MAX_BYTES), JSON_INTEGER]


class ConfirmUpload(_Strict):
    """`POST /attempts/{id}?action=upload` step 2: the object is there, record it."""

    step: Literal["confirm"]
    # The shape of the keys the request step issues: recordings/<org>/<attempt>/<id>.<ext>.
    key: str = Field(pattern=RECORDING_KEY_PATTERN, max_length=200)


# -- results ------------------------------------------------------------------


class AttemptState(Model):
    """The attempt's working state: what a client resumes from."""

    id: UUID
    org_id: UUID
    clerk_user_id: str
    scenario_id: UUID
    assignment_id: UUID | None
    status: AttemptStatus
    version: int
    answers: Document
    auto_save_data: Document
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    submitted_at: datetime | None
    last_activity_at: datetime | None
    recording_path: str | None
    vapi_call_id: str | None
    updated_at: datetime


class SavedDraft(Model):
    """An autosave that was written."""

    id: UUID
    version: int
    updated_at: datetime


class ActivityLogged(Model):
    """How many events were appended to the attempt's log."""

    attempt_id: UUID
    inserted: int


class AttemptResult(Model):
    """An ended attempt with its score and feedback."""

    id: UUID
    clerk_user_id: str
    scenario_id: UUID
    status: AttemptStatus
    version: int
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    submitted_at: datetime | None
    ended_by: str | None
    score: float | None
    score_breakdown: Document | None
    kpis: Document | None
    feedback_text: str | None
    feedback_json: Document | None
    manager_comments: str | None
    scored_by: str | None
    recording_path: str | None
    updated_at: datetime


class Submission(Model):
    """A submit's outcome: the result, and whether this call ended the attempt."""

    result: AttemptResult
    ended_now: bool


class DraftVerdict(Model):
    """One attempt's outcome in a save over many: ``ok`` with its new version,
    else why not and where the attempt stands (version, status)."""

    attempt_id: UUID = Field(validation_alias=AliasChoices("attempt_id", "id"))
    verdict: Verdict
    status: AttemptStatus | None
    version: int | None
    updated_at: datetime | None = None


class ActivityVerdict(Model):
    """One attempt's outcome in an activity log over many."""

    attempt_id: UUID = Field(validation_alias=AliasChoices("attempt_id", "id"))
    verdict: Verdict
    status: AttemptStatus | None
    version: int | None
    inserted: int


class SubmitVerdict(Model):
    """One attempt's outcome in a submit over many: ``ended`` or ``scored`` by
    this call, ``ended_before`` (a repeat: the stored result), or a refusal
    (``changed`` names what can no longer change)."""

    attempt_id: UUID
    verdict: Verdict
    result: AttemptResult | None = None
    changed: list[str] = Field(default_factory=list)


class Trainee(Model):
    """Who practised."""

    user_id: str
    display_name: str | None


class ScenarioSummary(Model):
    """The scenario an attempt practises."""

    id: UUID | None
    title: str | None
    difficulty: str | None
    category: str | None


class AssignmentSummary(Model):
    """The assignment an attempt fulfils."""

    id: UUID
    due_at: datetime | None
    required: bool | None


class AttemptInfo(Model):
    """The attempt with its scenario, assignment and trainee."""

    id: UUID
    status: AttemptStatus
    trainee: Trainee
    scenario: ScenarioSummary
    assignment: AssignmentSummary | None
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    submitted_at: datetime | None
    score: float | None
    recording_path: str | None
    updated_at: datetime


class ScenarioStatistics(Model):
    """Statistics of a scenario (get_attempt_statistics), over the attempts the caller sees."""

    scenario_id: UUID
    total_attempts: int = 0
    in_progress_attempts: int = 0
    completed_attempts: int = 0
    abandoned_attempts: int = 0
    failed_attempts: int = 0
    average_score: float | None = None
    median_score: float | None = None
    average_duration_seconds: float | None = None
    completion_rate: float | None = None


class ActiveAttempt(Model):
    """An in-progress attempt and how long it has been idle."""

    attempt_id: UUID
    clerk_user_id: str
    display_name: str | None
    scenario_id: UUID
    scenario_title: str | None
    started_at: datetime
    last_activity_at: datetime
    idle_minutes: int


class ActiveAttempts(Model):
    """The in-progress attempts on a scenario, most idle first."""

    scenario_id: UUID
    attempts: list[ActiveAttempt]


class UploadTicket(Model):
    """A presigned S3 POST for the recording."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_at: datetime


class RecordingConfirmed(Model):
    """A recording checked and recorded on the attempt."""

    id: UUID
    version: int
    recording_path: str
    updated_at: datetime
    size_bytes: int

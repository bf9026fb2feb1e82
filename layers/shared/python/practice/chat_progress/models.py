"""What chat sessions and their scenario progress take and give. The progress
document is seed 003's ``ScenarioProgress``: its shape is checked here (422);
what the shape cannot say (a current step within the steps, completed steps
and triggered actions that exist) is the service's to check (409)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from practice.core.model import JSON_INTEGER, Document, Model, Text

# How large a session's progress may be, serialized: a scenario of a few
# dozen steps with their prompts fits many times over.
PROGRESS_MAX_BYTES = 64 * 1024
ACTION_KEY_PATTERN = "^step_(0|[1-9][0-9]{0,2})_action_(0|[1-9][0-9]{0,2})$"

# An RFC 3339 instant with its offset (2024-01-15T10:30:00.000Z), kept as the
# client wrote it: its whole form is in the pattern.
INSTANT_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3])"
    r":[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
Instant = Annotated[str, Field(pattern=INSTANT_PATTERN)]
Label = Annotated[Text, Field(max_length=500)]
Prose = Annotated[Text, Field(max_length=8_000)]
Index = Annotated[int, Field(ge=0, le=999), JSON_INTEGER]


class _Document(Model):
    # Seed 003's shape exactly: a member it does not name is refused.
    model_config = ConfigDict(extra="forbid")


class ProgressAction(_Document):
    """One action of a step."""

    label: Label
    prompt: Prose
    agentName: Label | None = None  # noqa: N815 (the document's own names)
    type: Literal["research", "chat"] | None = None


class ProgressStep(_Document):
    """One step of the scenario."""

    title: Label
    description: Prose
    actions: list[ProgressAction] = Field(max_length=50)


class ProgressScenario(_Document):
    """The scenario the session follows."""

    id: Annotated[Text, Field(min_length=1, max_length=255)]
    title: Label
    description: Prose
    steps: list[ProgressStep] = Field(min_length=1, max_length=100)


class ScenarioProgress(_Document):
    """Seed 003's ScenarioProgress."""

    scenario: ProgressScenario
    currentStep: Index  # noqa: N815
    completedSteps: list[Index] = Field(max_length=100)  # noqa: N815
    triggeredActions: dict[  # noqa: N815
        Annotated[str, Field(pattern=ACTION_KEY_PATTERN)], bool
    ] = Field(
        description="step_<i>_action_<j> of actions that exist",
        json_schema_extra={"additionalProperties": False},
    )
    startedAt: Instant  # noqa: N815
    lastUpdatedAt: Instant  # noqa: N815


class PutProgress(Model):
    """`PUT /chat-sessions/{sessionId}/scenario-progress`."""

    model_config = ConfigDict(extra="forbid")

    scenario_progress: ScenarioProgress
    scenario_id: Annotated[Text, Field(min_length=1, max_length=255)] = Field(
        description="the progress's scenario.id"
    )
    completed: bool = False


class NewSession(Model):
    """`POST /chat-sessions`."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(max_length=200)] | None = None


class ProgressState(Model):
    """A session's scenario progress, as seed 003 answers it, and its version."""

    scenario_id: str | None
    scenario_progress: Document | None
    scenario_started_at: datetime | None
    scenario_completed_at: datetime | None
    version: int = Field(description="the progress's version; its ETag")


class ChatSession(Model):
    """A chat session and where its scenario stands."""

    id: UUID
    user_id: str
    title: str | None
    scenario_id: str | None
    scenario_started_at: datetime | None
    scenario_completed_at: datetime | None
    progress_version: int
    created_at: datetime
    updated_at: datetime


class ChatSessions(Model):
    """A page of the caller's sessions, newest first."""

    sessions: list[ChatSession]
    next_cursor: str | None = Field(description="the cursor of the next page; null at the end")

"""What the scenario catalog takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from practice.core.model import JSON_INTEGER, Document, Model, Text

Sort = Literal["trending", "most_saved", "top_rated", "most_used", "newest"]
Difficulty = Literal["beginner", "intermediate", "advanced"]
Visibility = Literal["private", "org", "public"]
# Private notes on a scenario: a person's jottings, not a document store.
NOTES_MAX_CHARS = 4_000
TRENDING_DAYS = 7

Short = Annotated[Text, Field(min_length=1, max_length=200)]
Long = Annotated[Text, Field(max_length=20_000)]


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


# -- inputs -------------------------------------------------------------------


class ScenarioFields(_Strict):
    """What an author writes of a scenario (all optional in a PATCH)."""

    description: Long | None = None
    role: Short | None = None
    difficulty: Difficulty | None = None
    category: Short | None = None
    instructions: Long | None = None
    context: Long | None = None
    expected_outcome: Long | None = None
    learning_goal: Long | None = None
    learning_objectives: list[Annotated[Text, Field(max_length=1_000)]] | None = Field(
        default=None, max_length=50
    )
    persona: Document | None = None
    comfort_indicators: Document | None = None
    difficulty_rating: Annotated[int, Field(ge=1, le=10), JSON_INTEGER] | None = None
    cefr_level: Annotated[Text, Field(max_length=10)] | None = None
    cefr_recommendation: Long | None = None
    visibility: Literal["private", "org"] | None = None


class NewScenario(ScenarioFields):
    """`POST /scenarios`: a scenario of the caller's org (admins and managers)."""

    title: Short


class ScenarioChanges(ScenarioFields):
    """`PATCH /scenarios/{scenarioId}`: the fields sent change; `is_active` true
    brings a deactivated scenario back."""

    title: Short | None = None
    is_active: bool | None = None


class Rating(_Strict):
    """`PUT /scenarios/{scenarioId}/rating`."""

    rating: Annotated[int, Field(ge=1, le=5), JSON_INTEGER]


class Notes(_Strict):
    """`PUT /scenarios/{scenarioId}/notes`: private to the caller; null clears them."""

    notes: Annotated[Text, Field(max_length=NOTES_MAX_CHARS)] | None


# -- results ------------------------------------------------------------------


class ScenarioFigures(Model):
    """The org's engagement figures of a scenario."""

    amount_saved_count: int
    total_times_used: int = Field(description="completed attempts")
    total_attempts: int = Field(description="attempts started")
    average_rating: float | None
    ratings_count: int
    completion_rate: float | None = Field(description="percent of attempts completed")
    average_time_spent: int | None = Field(description="seconds, over completed attempts")
    completions_7d: int = Field(
        description="completed attempts started in the last 7 UTC days, today included (trending)"
    )


class MyProgress(Model):
    """The caller's own progress on a scenario."""

    is_saved: bool
    saved_at: datetime | None
    user_rating: int | None
    user_notes: str | None
    times_completed: int
    times_attempted: int
    last_completed_at: datetime | None


class Scenario(Model):
    """A scenario with its org's figures and the caller's progress."""

    id: UUID
    built_in: bool = Field(description="shared by every org; read-only")
    title: str
    description: str | None
    role: str | None
    difficulty: Difficulty
    category: str | None
    instructions: str | None
    context: str | None
    expected_outcome: str | None
    learning_goal: str | None
    learning_objectives: list[str] | None
    persona: Document | None
    comfort_indicators: Document | None
    difficulty_rating: int | None
    cefr_level: str | None
    cefr_recommendation: str | None
    created_by_user_id: str | None
    visibility: Visibility
    is_active: bool
    created_at: datetime
    updated_at: datetime
    metadata: ScenarioFigures
    progress: MyProgress


class ScenarioPage(Model):
    """A page of the catalog in the sort's order."""

    sort: Sort
    scenarios: list[Scenario]
    next_cursor: str | None = Field(description="the cursor of the next page; null at the end")


class Engagement(Model):
    """The caller's progress on a scenario and the org's counters after a change."""

    scenario_id: UUID
    is_saved: bool
    saved_at: datetime | None
    user_rating: int | None
    user_notes: str | None
    times_completed: int
    times_attempted: int
    last_completed_at: datetime | None
    amount_saved_count: int
    average_rating: float | None
    ratings_count: int


class MemberScenarioProgress(Model):
    """A member's progress on one scenario (their private notes are not shown)."""

    scenario_id: UUID
    scenario_title: str
    is_saved: bool
    saved_at: datetime | None
    user_rating: int | None
    times_completed: int
    times_attempted: int
    last_attempt_at: datetime | None
    last_completed_at: datetime | None
    updated_at: datetime


class MemberProgress(Model):
    """A member's progress across scenarios, most recently changed first."""

    user_id: str
    scenarios: list[MemberScenarioProgress]

"""The rules of writing an attempt, in one home for every function that writes
one (the attempt endpoint now; batch and webhooks later).

- **Tenant**: an attempt is found only inside the caller's org (and again by RLS).
- **Ownership**: only the trainee who owns an attempt writes its drafts and activity.
- **In progress**: drafts change only while the attempt is in progress.
- **Version**: a draft write names the version it builds on; another is a conflict.
- **Activity types**: the closed set below.
- **Ended is ended**: a submit may set answers, transcript and status only while
  the attempt is in progress; a repeat that sends them unchanged is a replay.

The first four are decided in the database by ``attempt_write_verdict()``
(sql/migrations/0014), which the write functions apply to rows they lock, so a
statement over one attempt or a hundred decides the same way; ``Verdict`` names
its answers and ``refuse`` turns one into the domain error the single endpoint
raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from practice.errors import Conflict, Forbidden, NotFound

# The activity a client may log. A closed set keeps the log queryable: the
# reporting side counts these names, and a typo would silently split a series.
ActivityType = Literal[
    "answer_changed",
    "autosave",
    "call_connected",
    "call_ended",
    "call_started",
    "client_error",
    "focus_gained",
    "focus_lost",
    "hint_viewed",
    "idle",
    "navigation",
    "note_added",
    "recording_started",
    "recording_stopped",
    "resumed",
]
MAX_ACTIVITY_EVENTS = 100
# When an event may say it happened: a client clock runs a little ahead, and an
# offline client replays a backlog, but not from before the attempt could exist.
ACTIVITY_CLOCK_SKEW = timedelta(minutes=5)
ACTIVITY_MAX_AGE = timedelta(days=30)

Verdict = Literal["ok", "not_found", "forbidden", "not_in_progress", "conflict"]

# The tenant filter of every attempt statement (RLS applies it again).
IN_CALLERS_ORG = "org_id = %(org_id)s"


def refuse(
    verdict: str, attempt_id: UUID, *, action: str, current_version: int | None, status: str | None
) -> None:
    """Raise the domain error of a verdict other than ``ok``."""
    if verdict == "not_found":
        raise NotFound(f"attempt {attempt_id} not found")
    if verdict == "forbidden":
        raise Forbidden(f"only the trainee who owns the attempt may {action} it")
    if verdict == "not_in_progress":
        raise Conflict(
            f"attempt {attempt_id} is {status}, no longer in progress",
            current_version=current_version,
            status_value=status,
        )
    if verdict == "conflict":
        raise Conflict(
            f"attempt {attempt_id} is at version {current_version}",
            current_version=current_version,
        )


# What a submit may set only while the attempt is in progress.
ENDING_FIELDS = ("status", "answers", "transcript_text")


def changes_after_end(body: BaseModel, stored: Mapping[str, Any]) -> list[str]:
    """The ending fields a submit sent that differ from the ended attempt
    ``stored``: empty for a replay, else what can no longer change."""
    return [
        name
        for name in ENDING_FIELDS
        if name in body.model_fields_set and getattr(body, name) != stored[name]
    ]

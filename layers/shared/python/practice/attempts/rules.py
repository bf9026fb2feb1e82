"""The rules of acting on an attempt, as the domain names them.

Who may do what to an attempt (save, activity, submit, score, upload, and what
``validate`` predicts) is decided in one place, the database's
``attempt_verdict()`` (sql/migrations/0018), which every statement that acts on
an attempt calls on the row it has locked: the single endpoint, the batch
function and the webhooks decide the same way. This module names its answers
and turns a refusal into the domain error the single endpoint raises; it
decides nothing itself.

What is Python's: the closed set of activity types (a client may log only
these: reporting counts them by name, and a typo would split a series) and
how many events one request may carry; both are part of the request's shape,
checked before anything reaches the database.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from practice.core.errors import Conflict, Forbidden, NotFound

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

# What attempt_verdict() answers. Successes: ok (save, activity, upload), ended
# and scored (submit), ended_before (a repeated submit: nothing changes).
Verdict = Literal[
    "ok",
    "ended",
    "scored",
    "ended_before",
    "not_found",
    "forbidden",
    "not_in_progress",
    "conflict",
    "changed",
    "not_completed",
    "invalid_status",
    "recording_already_uploaded",
    "out_of_range",
]
SUCCEEDED: frozenset[str] = frozenset({"ok", "ended", "scored", "ended_before"})

# What each action's refusal tells the caller they may not do.
_FORBIDDEN = {
    "save": "only the trainee who owns the attempt may save it",
    "activity": "only the trainee who owns the attempt may log its activity",
    "upload": "only the trainee who owns the attempt may attach its recording",
    "submit": (
        "a coach scores an attempt once it has completed, or ends a trainee's attempt in"
        " progress as abandoned sending nothing else; nobody scores their own attempt"
    ),
}


def refuse(
    verdict: str,
    attempt_id: UUID,
    *,
    action: str,
    current_version: int | None = None,
    status: str | None = None,
    changed: list[str] | None = None,
) -> None:
    """Raise the domain error of a refusal; return quietly for a success."""
    if verdict in SUCCEEDED:
        return
    if verdict == "not_found":
        raise NotFound(f"attempt {attempt_id} not found")
    if verdict == "forbidden":
        raise Forbidden(_FORBIDDEN[action])
    where = {"current_version": current_version, "status_value": status}
    if verdict == "conflict":
        raise Conflict(f"attempt {attempt_id} is at version {current_version}", **where)
    if verdict in ("not_in_progress", "invalid_status"):
        raise Conflict(f"attempt {attempt_id} is {status}, no longer in progress", **where)
    if verdict == "changed":
        raise Conflict(
            f"attempt {attempt_id} is {status}; {', '.join(changed or [])} can no longer change",
            fields=changed or [],
            **where,
        )
    if verdict == "not_completed":
        raise Conflict(
            f"attempt {attempt_id} is {status}; an attempt is scored once it has completed",
            **where,
        )
    if verdict == "out_of_range":
        raise Conflict(
            f"an event of attempt {attempt_id} says it happened before the attempt started or"
            " in the future (occurred_at, beyond five minutes of clock skew)",
            **where,
        )
    if verdict == "recording_already_uploaded":
        raise Conflict(f"attempt {attempt_id} already has its recording", **where)
    raise ValueError(f"unknown verdict {verdict!r}")

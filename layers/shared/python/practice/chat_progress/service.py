"""Chat sessions and their scenario progress.

The owner writes; a manager reads their team's sessions and an admin the
org's (row-level security, the member rule); anyone else finds nothing.
Each write of the progress is one statement (``chat_progress_write``,
sql/migrations/0023) that locks the session, asks whether it is the caller's
and on the version they expect, and writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from practice.chat_progress.models import (
    PROGRESS_MAX_BYTES,
    ChatSession,
    ChatSessions,
    NewSession,
    ProgressState,
    PutProgress,
    ScenarioProgress,
)
from practice.core.db import Database
from practice.core.errors import Conflict, Forbidden, NotFound, PreconditionFailed, TooLarge
from practice.core.identity import Principal
from practice.core.keyset import instant_cursor, next_cursor, read_instant

_COLUMNS = (
    "id, user_id, title, scenario_id, scenario_started_at, scenario_completed_at,"
    " progress_version, created_at, updated_at"
)
CREATE = (
    "insert into chat_sessions (org_id, user_id, title) values (%(org_id)s, %(user_id)s,"
    f" %(title)s) returning {_COLUMNS}"
)
# The caller's own sessions, newest first (idx_chat_sessions_user_created).
LIST = (
    f"select {_COLUMNS} from chat_sessions where org_id = %(org_id)s and user_id = %(user_id)s"
    " and (%(before_at)s::timestamptz is null or (created_at <= %(before_at)s"
    " and (created_at < %(before_at)s or id < %(before_id)s)))"
    " order by created_at desc, id desc limit %(limit)s"
)
ONE = f"select {_COLUMNS} from chat_sessions where id = %(id)s and org_id = %(org_id)s"
PROGRESS = (
    "select scenario_id, scenario_progress, scenario_started_at, scenario_completed_at,"
    " progress_version as version from chat_sessions where id = %(id)s and org_id = %(org_id)s"
)
WRITE = (
    "select * from chat_progress_write(%(org_id)s, %(user_id)s, %(id)s, %(action)s,"
    " %(expected)s, %(progress)s, %(scenario_id)s, %(completed)s)"
)


def contradictions(progress: ScenarioProgress, scenario_id: str) -> list[dict[str, str]]:
    """What the progress document says that cannot be so, field by field: what its
    schema cannot express (indexes of steps and actions that exist)."""
    steps = progress.scenario.steps
    found = []
    if scenario_id != progress.scenario.id:
        found.append(("body.scenario_id", "differs from scenario_progress.scenario.id"))
    if progress.currentStep >= len(steps):
        found.append(("body.scenario_progress.currentStep", f"the scenario has {len(steps)} steps"))
    if len(set(progress.completedSteps)) != len(progress.completedSteps):
        found.append(("body.scenario_progress.completedSteps", "names a step twice"))
    if any(step >= len(steps) for step in progress.completedSteps):
        found.append(
            ("body.scenario_progress.completedSteps", f"the scenario has {len(steps)} steps")
        )
    for key in progress.triggeredActions:
        _, step, _, action = key.split("_")
        if int(step) >= len(steps) or int(action) >= len(steps[int(step)].actions):
            found.append((f"body.scenario_progress.triggeredActions.{key}", "no such action"))
    return [{"field": field, "message": message} for field, message in found]


@dataclass
class ChatProgressService:
    """Chat sessions, bound to the container's database."""

    db: Database

    def _params(self, principal: Principal, **values: Any) -> dict[str, Any]:
        return {"org_id": principal.org_id, "user_id": principal.user_id, **values}

    def create(self, principal: Principal, body: NewSession) -> ChatSession:
        """A new session of the caller."""
        params = self._params(principal, title=body.title)
        (row,) = self.db.query(principal, CREATE, params, idempotent=False)
        return ChatSession.model_validate(row)

    def list(self, principal: Principal, limit: int, cursor: str | None) -> ChatSessions:
        """The caller's sessions, newest first, a keyset page at a time."""
        after = read_instant(cursor)
        params = self._params(
            principal,
            limit=limit,
            before_at=after[0] if after else None,
            before_id=after[1] if after else None,
        )
        sessions = [ChatSession.model_validate(r) for r in self.db.query(principal, LIST, params)]
        cursors = [instant_cursor(s.created_at, s.id) for s in sessions]
        return ChatSessions(sessions=sessions, next_cursor=next_cursor(cursors, limit))

    def get(self, principal: Principal, session_id: UUID) -> ChatSession:
        """One session: the owner's, their manager's or their admin's to read."""
        rows = self.db.query(principal, ONE, self._params(principal, id=session_id))
        if not rows:
            raise NotFound(f"chat session {session_id} not found")
        return ChatSession.model_validate(rows[0])

    def progress(self, principal: Principal, session_id: UUID) -> ProgressState:
        """The session's scenario progress and its version."""
        rows = self.db.query(principal, PROGRESS, self._params(principal, id=session_id))
        if not rows:
            raise NotFound(f"chat session {session_id} not found")
        return ProgressState.model_validate(rows[0])

    def _write(
        self, principal: Principal, session_id: UUID, expected: int | None, **values: Any
    ) -> ProgressState:
        params = self._params(
            principal,
            id=session_id,
            expected=expected,
            **({"progress": None, "scenario_id": None, "completed": False} | values),
        )
        (row,) = self.db.query(principal, WRITE, params, idempotent=False)
        verdict = row.pop("verdict")
        if verdict == "not_found":
            raise NotFound(f"chat session {session_id} not found")
        if verdict == "forbidden":
            raise Forbidden("only the session's owner writes its progress")
        if verdict == "stale":
            raise PreconditionFailed(
                f"the progress is at version {row['progress_version']}, not {expected}",
                current_version=row["progress_version"],
            )
        row["version"] = row.pop("progress_version")
        return ProgressState.model_validate(row)

    def put(
        self, principal: Principal, session_id: UUID, body: PutProgress, expected: int | None
    ) -> ProgressState:
        """Write the progress (the owner; on ``expected`` when given)."""
        document = body.scenario_progress.model_dump(mode="json", exclude_unset=True)
        size = len(json.dumps(document, separators=(",", ":")).encode())
        if size > PROGRESS_MAX_BYTES:
            raise TooLarge(
                f"the progress is {size} bytes; at most {PROGRESS_MAX_BYTES} are kept",
                field="body.scenario_progress",
            )
        found = contradictions(body.scenario_progress, body.scenario_id)
        if found:
            raise Conflict("the progress contradicts its scenario", errors=found)
        return self._write(
            principal,
            session_id,
            expected,
            action="put",
            progress=Jsonb(document),
            scenario_id=body.scenario_id,
            completed=body.completed,
        )

    def clear(self, principal: Principal, session_id: UUID, expected: int | None) -> ProgressState:
        """Clear the progress (the owner); clearing a clear one changes nothing else."""
        return self._write(principal, session_id, expected, action="clear")

"""The batch operations: many attempts in one request, one statement and
one round trip with the caller's RLS context.

Every write goes through the attempt feature's own multi-item statements
(``AttemptService.save_drafts``, ``log_activities``, ``submit_many``, ``states``),
so ownership, in-progress, version, activity types and the tenant filter are
the single endpoint's, from the same home. Each item is judged on its own: one
item's conflict never blocks another's save.

Whole-request refusals: more items than ``MAX_BATCH_ITEMS``, and the same
attempt twice in a write (``batch_save``, ``batch_activity``, ``batch_submit``):
two writes of one attempt in one statement would judge both against the same
version, so the request is refused naming the ids rather than applying one
silently. Reads (``multiple_states``, ``validate``, ``mixed_reads``) answer
repeated ids each time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from psycopg import Connection

from practice.attempts.models import Draft, SubmitAttempt
from practice.attempts.service import AttemptService
from practice.batch.models import (
    MAX_BATCH_ITEMS,
    ActivityOutcome,
    BatchActivity,
    BatchRequest,
    BatchResult,
    BatchSave,
    BatchSubmit,
    BatchSummary,
    MixedReads,
    MultipleStates,
    Outcome,
    ReadOutcome,
    SaveOutcome,
    StateOutcome,
    SubmitOutcome,
    ValidateAttempts,
    ValidationOutcome,
)
from practice.core.config import Settings
from practice.core.errors import Invalid
from practice.core.identity import Principal

# ``validate`` asks the submit verdict of each attempt in SQL (0018), beside its
# warnings; one statement for the whole batch.
VALIDATE = "select * from validate_multiple_attempts(%(ids)s)"

SUCCEEDED = frozenset({"saved", "found", "logged", "valid", "submitted", "already_ended"})

_SUBMIT_STATUS = {
    "ended": "submitted",
    "ended_before": "already_ended",
    "changed": "conflict",
    "forbidden": "forbidden",
    "not_found": "not_found",
}
# What the submit verdict of a bare submit says about validity: it would end
# the attempt (valid), or it would not, and why.
_PROBLEM_OF = {"ended_before": "not_in_progress", "forbidden": "forbidden"}


@dataclass
class BatchService:
    """The batch operations, bound to the container's attempt service."""

    attempts: AttemptService
    settings: Settings

    def run(
        self, principal: Principal, request: BatchRequest, conn: Connection | None = None
    ) -> BatchResult:
        """Apply ``request`` item by item; outcomes in request order."""
        self._check_size(request)
        handlers: dict[type, Callable[..., list[Outcome]]] = {
            BatchSave: self._save,
            MultipleStates: self._states,
            BatchActivity: self._activity,
            ValidateAttempts: self._validate,
            BatchSubmit: self._submit,
            MixedReads: self._mixed,
        }
        results = handlers[type(request)](principal, request, conn)
        succeeded = sum(1 for r in results if r.status in SUCCEEDED)
        return BatchResult(
            operation=request.operation,
            results=results,
            summary=BatchSummary(succeeded=succeeded, failed=len(results) - succeeded),
        )

    def _check_size(self, request: BatchRequest) -> None:
        limit = MAX_BATCH_ITEMS
        if len(request.data) > limit:
            raise Invalid(
                f"a batch holds at most {limit} items; this one has {len(request.data)}",
                field="body.data",
                limit=limit,
            )

    # -- writes --------------------------------------------------------------

    def _save(
        self, principal: Principal, request: BatchSave, conn: Connection | None
    ) -> list[Outcome]:
        _refuse_duplicates([item.attempt_id for item in request.data])
        drafts = [
            (
                item.attempt_id,
                Draft(
                    answers=item.answers,
                    auto_save_data=item.auto_save_data,
                    expected_version=item.expected_version,
                ),
            )
            for item in request.data
        ]
        outcomes: list[Outcome] = []
        for v in self.attempts.save_drafts(principal, drafts, conn):
            if v.verdict == "ok":
                outcome = SaveOutcome(
                    attempt_id=v.attempt_id,
                    status="saved",
                    version=v.version,
                    updated_at=v.updated_at,
                )
            elif v.verdict in ("conflict", "not_in_progress"):
                outcome = SaveOutcome(
                    attempt_id=v.attempt_id, status=v.verdict, current_version=v.version
                )
            else:
                outcome = SaveOutcome(attempt_id=v.attempt_id, status=v.verdict)
            outcomes.append(outcome)
        return outcomes

    def _activity(
        self, principal: Principal, request: BatchActivity, conn: Connection | None
    ) -> list[Outcome]:
        _refuse_duplicates([item.attempt_id for item in request.data])
        logs = [(item.attempt_id, item.events) for item in request.data]
        outcomes: list[Outcome] = []
        for v in self.attempts.log_activities(principal, logs, conn):
            if v.verdict == "ok":
                outcome = ActivityOutcome(
                    attempt_id=v.attempt_id, status="logged", inserted=v.inserted
                )
            elif v.verdict == "not_in_progress":
                outcome = ActivityOutcome(
                    attempt_id=v.attempt_id, status=v.verdict, current_version=v.version
                )
            else:
                # The activity rule has no version check: conflict cannot come back.
                outcome = ActivityOutcome(attempt_id=v.attempt_id, status=v.verdict)
            outcomes.append(outcome)
        return outcomes

    def _submit(
        self, principal: Principal, request: BatchSubmit, conn: Connection | None
    ) -> list[Outcome]:
        items = request.data
        _refuse_duplicates([item.attempt_id for item in items])
        # A bare id sends no status, so a repeat of it is always a replay; an
        # explicit status that differs from an ended attempt's is a conflict,
        # as for the single submit.
        submissions = [
            (
                item.attempt_id,
                SubmitAttempt(status=item.status)
                if "status" in item.model_fields_set
                else SubmitAttempt(),
            )
            for item in items
        ]
        outcomes: list[Outcome] = []
        for v in self.attempts.submit_many(principal, submissions, conn):
            version = v.result.version if v.result is not None else None
            outcomes.append(
                SubmitOutcome(
                    attempt_id=v.attempt_id,
                    status=_SUBMIT_STATUS[v.verdict],
                    result=v.result if v.verdict != "changed" else None,
                    changed=v.changed or None,
                    current_version=version if v.verdict == "changed" else None,
                )
            )
        return outcomes

    # -- reads ---------------------------------------------------------------

    def _states(
        self, principal: Principal, request: MultipleStates, conn: Connection | None
    ) -> list[Outcome]:
        states = self.attempts.states(principal, request.data, conn)
        return [
            StateOutcome(attempt_id=attempt_id, status="found", state=state)
            if state is not None
            else StateOutcome(attempt_id=attempt_id, status="not_found")
            for attempt_id, state in zip(request.data, states, strict=True)
        ]

    def _mixed(
        self, principal: Principal, request: MixedReads, conn: Connection | None
    ) -> list[Outcome]:
        items = [(item.type, item.attempt_id) for item in request.data]
        found = self.attempts.mixed_reads(principal, items, conn)
        return [
            ReadOutcome(
                attempt_id=item.attempt_id,
                type=item.type,
                status="found",
                **{item.type: value},
            )
            if value is not None
            else ReadOutcome(attempt_id=item.attempt_id, type=item.type, status="not_found")
            for item, value in zip(request.data, found, strict=True)
        ]

    def _validate(
        self, principal: Principal, request: ValidateAttempts, conn: Connection | None
    ) -> list[Outcome]:
        params = {"ids": request.data}
        rows = self.attempts.db.query(principal, VALIDATE, params, conn=conn)
        outcomes: list[Outcome] = []
        for row in rows:
            if row["verdict"] == "not_found":
                outcome = ValidationOutcome(
                    attempt_id=row["attempt_id"], status="not_found", can_submit=False
                )
            else:
                problem = _PROBLEM_OF.get(row["verdict"])
                outcome = ValidationOutcome(
                    attempt_id=row["attempt_id"],
                    status="invalid" if problem else "valid",
                    can_submit=problem is None,
                    problems=[problem] if problem else [],
                    warnings=list(row["warnings"]),
                    attempt_status=row["status"],
                    version=row["version"],
                )
            outcomes.append(outcome)
        return outcomes


def _refuse_duplicates(attempt_ids: Sequence[UUID]) -> None:
    repeated = [str(attempt_id) for attempt_id, n in Counter(attempt_ids).items() if n > 1]
    if repeated:
        raise Invalid(
            f"each attempt may appear once in a write batch; repeated: {', '.join(repeated)}",
            field="body.data",
            duplicates=repeated,
        )

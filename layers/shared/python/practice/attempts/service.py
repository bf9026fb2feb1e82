"""The attempt lifecycle: start, state, info, autosave, activity, submit and
statistics (seed 004's consolidated endpoint).

Every statement is scoped twice: by the caller's org here (``rules.IN_CALLERS_ORG``)
and by row-level security in the database. Success paths are one statement, so
one network round trip with the RLS context (see ``Database.run``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from practice.attempts import rules
from practice.attempts.models import (
    ActiveAttempt,
    ActiveAttempts,
    ActivityEvent,
    ActivityLogged,
    AttemptInfo,
    AttemptResult,
    AttemptState,
    Draft,
    SavedDraft,
    ScenarioStatistics,
    StartAttempt,
    Submission,
    SubmitAttempt,
)
from practice.cache import MISSING, TenantCache
from practice.config import Settings
from practice.db import Database
from practice.errors import Conflict, Forbidden, Invalid, NotFound
from practice.identity import Principal, Role

STATE_COLUMNS = """
    id, org_id, clerk_user_id, scenario_id, assignment_id, status, version,
    answers, auto_save_data, started_at, ended_at, duration_seconds, submitted_at,
    last_activity_at, recording_path, vapi_call_id, updated_at
"""

RESULT_COLUMNS = """
    id, clerk_user_id, scenario_id, status, version, started_at, ended_at,
    duration_seconds, submitted_at, score, score_breakdown, kpis, feedback_text,
    feedback_json, manager_comments, scored_by, recording_path, updated_at
"""

_START = f"""
insert into scenario_attempts
    (org_id, clerk_user_id, scenario_id, assignment_id, vapi_call_id, metadata)
select %(org_id)s, %(user_id)s, s.id, a.id, %(vapi_call_id)s, %(metadata)s
from scenarios s
left join assignments a
       on a.id = %(assignment_id)s
      and a.org_id = %(org_id)s
      and a.assignee_user_id = %(user_id)s
      and a.scenario_id = s.id
where s.id = %(scenario_id)s
  and s.is_active
  and (s.org_id = %(org_id)s or s.org_id is null)
  and (%(assignment_id)s::uuid is null or a.id is not null)
returning {STATE_COLUMNS}
"""

_START_DIAGNOSIS = """
select exists (select 1 from scenarios
               where id = %(scenario_id)s and is_active
                 and (org_id = %(org_id)s or org_id is null)) as scenario_ok
"""

STATES = f"""
select {STATE_COLUMNS} from scenario_attempts
 where id = any(%(ids)s) and {rules.IN_CALLERS_ORG}
"""

_INFO = f"""
select a.id, a.status, a.version, a.clerk_user_id, a.started_at, a.ended_at,
       a.duration_seconds, a.submitted_at, a.score, a.recording_path, a.updated_at,
       m.display_name as trainee_name,
       s.id as scenario_id, s.title as scenario_title, s.difficulty as scenario_difficulty,
       s.category as scenario_category,
       asg.id as assignment_id, asg.due_at as assignment_due_at,
       asg.required as assignment_required
from scenario_attempts a
left join scenarios s on s.id = a.scenario_id
left join org_members m on m.org_id = a.org_id and m.user_id = a.clerk_user_id
left join assignments asg on asg.id = a.assignment_id
where a.id = any(%(ids)s) and a.{rules.IN_CALLERS_ORG}
"""

# The conditional autosave of any number of attempts in one statement. The rows
# are locked in id order (two batches cannot deadlock) and judged on their
# latest committed version, so a save that lost a race learns the version that
# beat it without a second round trip.
SAVE_DRAFTS = f"""
with item as (
    select * from jsonb_to_recordset(%(items)s)
        as i(ord int, attempt_id uuid, expected_version int, answers jsonb, auto_save_data jsonb)
),
locked as (
    select a.id, a.clerk_user_id, a.status, a.version
      from scenario_attempts a
     where a.id in (select attempt_id from item) and a.{rules.IN_CALLERS_ORG}
     order by a.id
       for update
),
judged as (
    select i.ord, i.attempt_id, i.answers, i.auto_save_data, l.status, l.version,
           {rules.write_verdict("l", "i.expected_version")} as verdict
      from item i left join locked l on l.id = i.attempt_id
),
saved as (
    update scenario_attempts a
       set answers = coalesce(j.answers, a.answers),
           auto_save_data = coalesce(j.auto_save_data, a.auto_save_data),
           version = a.version + 1,
           last_activity_at = now(),
           updated_at = now()
      from judged j
     where j.verdict = 'ok' and a.id = j.attempt_id and a.{rules.IN_CALLERS_ORG}
    returning a.id, a.version, a.updated_at
)
select j.ord, j.attempt_id as id, j.verdict, j.status,
       coalesce(s.version, j.version) as version, s.updated_at
  from judged j left join saved s on s.id = j.attempt_id
 order by j.ord
"""

# Appends events to the logs of any number of attempts in one statement, under
# the same rule as drafts, and moves last_activity_at (never past now).
LOG_ACTIVITY = f"""
with item as (
    select * from jsonb_to_recordset(%(items)s) as i(ord int, attempt_id uuid, events jsonb)
),
locked as (
    select a.id, a.org_id, a.clerk_user_id, a.status, a.version
      from scenario_attempts a
     where a.id in (select attempt_id from item) and a.{rules.IN_CALLERS_ORG}
     order by a.id
       for update
),
judged as (
    select i.ord, i.attempt_id, i.events, l.org_id, l.status, l.version,
           {rules.write_verdict("l", None)} as verdict
      from item i left join locked l on l.id = i.attempt_id
),
inserted as (
    insert into attempt_activity (org_id, attempt_id, user_id, event_type, payload, occurred_at)
    select j.org_id, j.attempt_id, %(user_id)s, e.event_type, coalesce(e.payload, '{{}}'::jsonb),
           coalesce(e.occurred_at, now())
      from judged j
     cross join jsonb_to_recordset(j.events)
           as e(event_type text, payload jsonb, occurred_at timestamptz)
     where j.verdict = 'ok'
    returning attempt_id, occurred_at
),
latest as (
    select attempt_id, max(occurred_at) as occurred_at from inserted group by attempt_id
),
touched as (
    update scenario_attempts a
       set last_activity_at = greatest(a.last_activity_at, least(l.occurred_at, now()))
      from latest l
     where a.id = l.attempt_id
    returning a.id
)
select j.ord, j.attempt_id as id, j.verdict, j.status, j.version,
       (select count(*) from inserted n where n.attempt_id = j.attempt_id) as inserted
  from judged j
 order by j.ord
"""

# Ends an in-progress attempt. The completion trigger writes the fact row and
# moves the engagement counters in this same transaction; `status =
# 'in_progress'` makes a repeated or concurrent submit change nothing.
_SUBMIT = f"""
update scenario_attempts
   set status = %(status)s::attempt_status,
       ended_at = coalesce(ended_at, now()),
       submitted_at = now(),
       duration_seconds = greatest(0, round(extract(epoch from now() - started_at)))::int,
       answers = coalesce(%(answers)s, answers),
       transcript_text = coalesce(%(transcript_text)s, transcript_text),
       score = coalesce(%(score)s, score),
       score_breakdown = coalesce(%(score_breakdown)s, score_breakdown),
       kpis = coalesce(%(kpis)s, kpis),
       feedback_text = coalesce(%(feedback_text)s, feedback_text),
       feedback_json = coalesce(%(feedback_json)s, feedback_json),
       manager_comments = coalesce(%(manager_comments)s, manager_comments),
       scored_by = case when %(score)s::numeric is not null then %(user_id)s else scored_by end,
       version = version + 1,
       updated_at = now()
 where id = %(id)s and {rules.IN_CALLERS_ORG} and status = 'in_progress'
returning {RESULT_COLUMNS}
"""

# A coach scores an attempt that has ended (the usual order: the call ends, then
# a coach or the AI analysis scores it); re-scoring replaces what it sends. The
# fact-sync trigger carries the new score into the warehouse.
_SCORE = f"""
update scenario_attempts
   set score = coalesce(%(score)s, score),
       score_breakdown = coalesce(%(score_breakdown)s, score_breakdown),
       kpis = coalesce(%(kpis)s, kpis),
       feedback_text = coalesce(%(feedback_text)s, feedback_text),
       feedback_json = coalesce(%(feedback_json)s, feedback_json),
       manager_comments = coalesce(%(manager_comments)s, manager_comments),
       scored_by = case when %(score)s::numeric is not null then %(user_id)s else scored_by end,
       version = version + 1,
       updated_at = now()
 where id = %(id)s and {rules.IN_CALLERS_ORG} and status = 'completed'
returning {RESULT_COLUMNS}
"""

# The result, plus what a repeated submit may carry, to tell a replay from a change.
_RESULT = f"""
select {RESULT_COLUMNS}, answers, transcript_text
  from scenario_attempts where id = %(id)s and {rules.IN_CALLERS_ORG}
"""

# What a submit may set only while the attempt is in progress.
_ENDING_FIELDS = ("status", "answers", "transcript_text")
_STATISTICS = "select * from get_attempt_statistics(%(scenario_id)s)"
_ACTIVE = "select * from get_active_attempts(%(scenario_id)s)"
_SCENARIO_OF = (
    f"select scenario_id from scenario_attempts where id = %(id)s and {rules.IN_CALLERS_ORG}"
)


def jsonb(value: Any) -> Jsonb | None:
    """A JSON document as a jsonb parameter (None stays NULL)."""
    return None if value is None else Jsonb(value)


def attempt_tag(attempt_id: UUID) -> str:
    """The cache tag of everything cached about one attempt."""
    return f"attempt:{attempt_id}"


def scenario_tag(scenario_id: UUID) -> str:
    """The cache tag of everything cached about one scenario's attempts."""
    return f"scenario:{scenario_id}"


def viewer(principal: Principal) -> str:
    """Who looks, as far as cached reads differ (RLS): admins of an org all see
    the same rows, managers and trainees each see their own slice."""
    return "admin" if principal.role is Role.ADMIN else f"{principal.role}:{principal.user_id}"


def _info_from_row(row: dict[str, Any]) -> AttemptInfo:
    assignment = None
    if row["assignment_id"] is not None:
        assignment = {
            "id": row["assignment_id"],
            "due_at": row["assignment_due_at"],
            "required": row["assignment_required"],
        }
    return AttemptInfo.model_validate(
        row
        | {
            "trainee": {"user_id": row["clerk_user_id"], "display_name": row["trainee_name"]},
            "scenario": {
                "id": row["scenario_id"],
                "title": row["scenario_title"],
                "difficulty": row["scenario_difficulty"],
                "category": row["scenario_category"],
            },
            "assignment": assignment,
        }
    )


@dataclass
class AttemptService:
    """The attempt endpoint's domain, bound to the container's singletons."""

    db: Database
    cache: TenantCache
    settings: Settings

    def _params(self, principal: Principal, **values: Any) -> dict[str, Any]:
        return {"org_id": principal.org_id, "user_id": principal.user_id, **values}

    def _one(self, principal: Principal, sql: str, attempt_id: UUID) -> dict[str, Any]:
        rows = self.db.query(principal, sql, self._params(principal, id=attempt_id))
        if not rows:
            raise NotFound(f"attempt {attempt_id} not found")
        return rows[0]

    def _cached[R: BaseModel](
        self, principal: Principal, key: tuple, ttl: float, tag: str, load: Callable[[], R]
    ) -> R:
        cached = self.cache.get(principal.org_id, key)
        if cached is not MISSING:
            return cached
        value = load()
        self.cache.set(principal.org_id, key, value, ttl, tags=[tag])
        return value

    def _forget(self, principal: Principal, attempt_id: UUID) -> None:
        self.cache.invalidate_tag(principal.org_id, attempt_tag(attempt_id))

    # -- reads ---------------------------------------------------------------

    def state(self, principal: Principal, attempt_id: UUID) -> AttemptState:
        """The attempt's working state, always from the database: it carries the
        version a client saves against, and another container may have moved it."""
        rows = self.db.query(principal, STATES, self._params(principal, ids=[attempt_id]))
        if not rows:
            raise NotFound(f"attempt {attempt_id} not found")
        return AttemptState.model_validate(rows[0])

    def info(self, principal: Principal, attempt_id: UUID) -> AttemptInfo:
        """The attempt with its scenario, assignment and trainee (cached for the info
        TTL; it carries no version, so a briefly stale copy misleads no save)."""
        cached = self.cache.get(principal.org_id, ("info", attempt_id, viewer(principal)))
        if cached is not MISSING:
            return cached
        found = self.preload_info(principal, [attempt_id])
        if not found:
            raise NotFound(f"attempt {attempt_id} not found")
        return found[0]

    def preload_info(self, principal: Principal, attempt_ids: list[UUID]) -> list[AttemptInfo]:
        """Load the info of the visible attempts among ``attempt_ids`` into the cache."""
        rows = self.db.query(principal, _INFO, self._params(principal, ids=attempt_ids))
        infos = [_info_from_row(row) for row in rows]
        for info in infos:
            key = ("info", info.id, viewer(principal))
            tags = [attempt_tag(info.id)]
            self.cache.set(principal.org_id, key, info, self.settings.cache_ttl_info, tags=tags)
        return infos

    # -- writes --------------------------------------------------------------

    def start(self, principal: Principal, body: StartAttempt) -> AttemptState:
        """Start an attempt of the caller on a scenario their org can use."""
        params = self._params(
            principal,
            scenario_id=body.scenario_id,
            assignment_id=body.assignment_id,
            vapi_call_id=body.vapi_call_id,
            metadata=Jsonb(body.metadata),
        )
        try:
            rows = self.db.query(principal, _START, params, idempotent=False)
        except UniqueViolation as exc:
            raise Conflict(
                "vapi_call_id is already linked to an attempt", field="vapi_call_id"
            ) from exc
        if rows:
            return AttemptState.model_validate(rows[0])
        diagnosis = self.db.query(principal, _START_DIAGNOSIS, params)[0]
        if not diagnosis["scenario_ok"]:
            raise Invalid(
                f"scenario {body.scenario_id} does not exist or is not active",
                field="scenario_id",
            )
        raise Invalid(
            f"assignment {body.assignment_id} is not the caller's assignment for this scenario",
            field="assignment_id",
        )

    def save(self, principal: Principal, attempt_id: UUID, draft: Draft) -> SavedDraft:
        """The autosave: written only on ``draft.expected_version`` of an attempt the
        caller owns and is still practising."""
        item = {"ord": 0, "attempt_id": str(attempt_id), **draft.model_dump(exclude_none=True)}
        params = self._params(principal, items=Jsonb([item]))
        # Not retried: after a commit whose answer was lost, a repeat would conflict.
        row = self.db.query(principal, SAVE_DRAFTS, params, idempotent=False)[0]
        rules.refuse(
            row["verdict"],
            attempt_id,
            action="save",
            current_version=row["version"],
            status=row["status"],
        )
        self._forget(principal, attempt_id)
        return SavedDraft.model_validate(row)

    def log_activity(
        self, principal: Principal, attempt_id: UUID, events: list[ActivityEvent]
    ) -> ActivityLogged:
        """Append events to the log of an attempt the caller owns and is practising."""
        payload = [e.model_dump(mode="json", exclude_none=True) for e in events]
        item = {"ord": 0, "attempt_id": str(attempt_id), "events": payload}
        params = self._params(principal, items=Jsonb([item]))
        row = self.db.query(principal, LOG_ACTIVITY, params, idempotent=False)[0]
        rules.refuse(
            row["verdict"],
            attempt_id,
            action="log the activity of",
            current_version=row["version"],
            status=row["status"],
        )
        self._forget(principal, attempt_id)
        return ActivityLogged(attempt_id=attempt_id, inserted=row["inserted"])

    def submit(self, principal: Principal, attempt_id: UUID, body: SubmitAttempt) -> Submission:
        """End the attempt, or score it once it has ended (coaches only).

        A repeat answers the stored result; a change that can no longer be
        applied (answers, transcript, status of an ended attempt) is refused.
        """
        scoring = body.scoring_fields_sent()
        if scoring and not principal.can_coach:
            raise Forbidden(
                f"a trainee cannot score an attempt; remove {', '.join(scoring)}",
                fields=scoring,
            )
        params = self._params(
            principal,
            id=attempt_id,
            status=body.status,
            answers=jsonb(body.answers),
            transcript_text=body.transcript_text,
            score=body.score,
            score_breakdown=jsonb(body.score_breakdown),
            kpis=jsonb(body.kpis),
            feedback_text=body.feedback_text,
            feedback_json=jsonb(body.feedback_json),
            manager_comments=body.manager_comments,
        )
        rows = self.db.query(principal, _SUBMIT, params)
        if rows:
            result = AttemptResult.model_validate(rows[0])
            self._forget(principal, attempt_id)
            self.cache.invalidate_tag(principal.org_id, scenario_tag(result.scenario_id))
            return Submission(result=result, ended_now=True)
        # It had ended already: a replay answers the stored result, scoring
        # fields from a coach are applied, anything else is refused.
        stored = self._one(principal, _RESULT, attempt_id)
        changed = [
            name
            for name in _ENDING_FIELDS
            if name in body.model_fields_set and getattr(body, name) != stored[name]
        ]
        if changed:
            raise Conflict(
                f"attempt {attempt_id} is {stored['status']}; "
                f"{', '.join(changed)} can no longer change",
                fields=changed,
                current_version=stored["version"],
            )
        if scoring:
            return Submission(result=self._score(principal, attempt_id, params), ended_now=False)
        return Submission(result=AttemptResult.model_validate(stored), ended_now=False)

    def _score(
        self, principal: Principal, attempt_id: UUID, params: dict[str, Any]
    ) -> AttemptResult:
        rows = self.db.query(principal, _SCORE, params, idempotent=False)
        if not rows:
            raise Conflict(
                f"attempt {attempt_id} did not complete; only completed attempts are scored"
            )
        result = AttemptResult.model_validate(rows[0])
        self._forget(principal, attempt_id)
        self.cache.invalidate_tag(principal.org_id, scenario_tag(result.scenario_id))
        return result

    # -- statistics ----------------------------------------------------------

    def _scenario_of(self, principal: Principal, attempt_id: UUID) -> UUID:
        return self._one(principal, _SCENARIO_OF, attempt_id)["scenario_id"]

    def statistics(self, principal: Principal, attempt_id: UUID) -> ScenarioStatistics:
        """Seed 004's statistics for the attempt's scenario, as far as the caller sees."""
        scenario_id = self._scenario_of(principal, attempt_id)

        def load() -> ScenarioStatistics:
            rows = self.db.query(principal, _STATISTICS, {"scenario_id": scenario_id})
            return ScenarioStatistics.model_validate(
                {**(rows[0] if rows else {}), "scenario_id": scenario_id}
            )

        key = ("stats", scenario_id, viewer(principal))
        ttl = self.settings.cache_ttl_stats
        return self._cached(principal, key, ttl, scenario_tag(scenario_id), load)

    def active(self, principal: Principal, attempt_id: UUID) -> ActiveAttempts:
        """In-progress attempts on the attempt's scenario with idle minutes (coaches)."""
        principal.require(Role.ADMIN, Role.MANAGER)
        scenario_id = self._scenario_of(principal, attempt_id)
        rows = self.db.query(principal, _ACTIVE, {"scenario_id": scenario_id})
        attempts = [ActiveAttempt.model_validate(row) for row in rows]
        return ActiveAttempts(scenario_id=scenario_id, attempts=attempts)

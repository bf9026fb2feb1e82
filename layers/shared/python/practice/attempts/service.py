"""The attempt lifecycle: start, state, info, autosave, activity, submit and
statistics (the consolidated attempt endpoint).

Every statement is scoped twice: by the caller's org in the statement itself
(``org_id = %(org_id)s`` here, ``p_org_id`` in the SQL functions) and by
row-level security in the database. Who may act on an attempt is
``attempt_verdict()``'s to say (``practice.attempts.rules``). Success paths are
one statement, so one network round trip with the RLS context (see
``Database.run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from practice.attempts import rules
from practice.attempts.models import (
    ActiveAttempt,
    ActiveAttempts,
    ActivityEvent,
    ActivityLogged,
    ActivityVerdict,
    AttemptInfo,
    AttemptResult,
    AttemptState,
    Draft,
    DraftVerdict,
    SavedDraft,
    ScenarioStatistics,
    StartAttempt,
    Submission,
    SubmitAttempt,
    SubmitVerdict,
)
from practice.core.cache import MISSING, TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Conflict, NotFound
from practice.core.identity import Principal, Role

_START = """
select * from attempt_start(%(org_id)s, %(user_id)s, %(scenario_id)s, %(assignment_id)s,
                            %(vapi_call_id)s, %(metadata)s)
"""

STATES = "select * from attempt_states(%(org_id)s, %(ids)s)"

_INFO = """
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
where a.id = any(%(ids)s) and a.org_id = %(org_id)s
"""

# The writes of any number of attempts (one for the single endpoint, up to the
# batch limit for the batch function), each one statement: SQL functions of
# sql/migrations/0018 that lock each row, ask attempt_verdict() and write, and
# whose plans the server caches per connection.
SAVE_DRAFTS = "select * from attempt_save_drafts(%(org_id)s, %(user_id)s, %(items)s)"
LOG_ACTIVITY = "select * from attempt_log_activity(%(org_id)s, %(user_id)s, %(items)s)"
SUBMIT = "select * from attempt_submit(%(org_id)s, %(user_id)s, %(items)s)"

_STATISTICS = "select * from get_attempt_statistics(%(scenario_id)s)"
_ACTIVE = "select * from get_active_attempts(%(scenario_id)s)"
_SCENARIO_OF = "select scenario_id from scenario_attempts where id = %(id)s and org_id = %(org_id)s"
# Whether the caller still sees an attempt (policies: org, team, own): asked
# before a cached copy is served, in the round trip that checks the membership.
_VISIBLE = "select 1 from scenario_attempts where id = %(id)s and org_id = %(org_id)s"

# Mixed reads (the batch's ``mixed_reads``): the state, info and statistics
# reads above, each over its own ids, in one statement, so one round trip with
# the RLS context. Each branch is the single read itself (attempt_states, the
# info select, the attempt's scenario then get_attempt_statistics), so the
# visibility rules are theirs; rows come back as JSON, tagged by kind.
MIXED_READS = f"""
with stats_of as (
    select a.id, a.scenario_id from scenario_attempts a
     where a.id = any(%(stats_ids)s::uuid[]) and a.org_id = %(org_id)s
),
stats as (
    select sc.scenario_id, to_jsonb(g) as doc
      from (select distinct scenario_id from stats_of) sc
     cross join lateral get_attempt_statistics(sc.scenario_id) g
)
select 'state' as kind, s.id, to_jsonb(s) as doc
  from attempt_states(%(org_id)s, %(state_ids)s::uuid[]) s
union all
select 'info', i.id, to_jsonb(i) from ({_INFO}) i
union all
select 'stats', o.id, t.doc
  from stats_of o join stats t on t.scenario_id is not distinct from o.scenario_id
"""
MixedKind = Literal["state", "info", "stats"]


def attempt_tag(attempt_id: UUID) -> str:
    """The cache tag of everything cached about one attempt."""
    return f"attempt:{attempt_id}"


def scenario_tag(scenario_id: UUID) -> str:
    """The cache tag of everything cached about one scenario's attempts."""
    return f"scenario:{scenario_id}"


def member_tag(user_id: str) -> str:
    """The cache tag of everything cached about one member's attempt history
    (tracking): dropped when an attempt of theirs ends or is scored."""
    return f"member:{user_id}"


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


def _submit_verdict(row: dict[str, Any]) -> SubmitVerdict:
    result = AttemptResult.model_validate(row) if row["id"] is not None else None
    return SubmitVerdict(
        attempt_id=row["attempt_id"],
        verdict=row["verdict"],
        result=result,
        changed=list(row["changed"] or ()),
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

    def forget(
        self,
        principal: Principal,
        attempt_ids: Iterable[UUID],
        scenario_ids: Iterable[UUID] = (),
        members: Iterable[str] = (),
    ) -> None:
        """Drop what this container cached about these attempts, scenarios and
        members' histories."""
        for attempt_id in attempt_ids:
            self.cache.invalidate_tag(principal.org_id, attempt_tag(attempt_id))
        for scenario_id in scenario_ids:
            self.cache.invalidate_tag(principal.org_id, scenario_tag(scenario_id))
        for user_id in members:
            self.cache.invalidate_tag(principal.org_id, member_tag(user_id))

    # -- reads ---------------------------------------------------------------

    def states(
        self, principal: Principal, attempt_ids: list[UUID], conn: Connection | None = None
    ) -> list[AttemptState | None]:
        """The working states of ``attempt_ids`` in one statement, in their order;
        None for an attempt the caller cannot see (unknown and foreign are one)."""
        params = self._params(principal, ids=attempt_ids)
        rows = self.db.query(principal, STATES, params, conn=conn)
        found = {row["id"]: AttemptState.model_validate(row) for row in rows}
        return [found.get(attempt_id) for attempt_id in attempt_ids]

    def state(self, principal: Principal, attempt_id: UUID) -> AttemptState:
        """The attempt's working state, always from the database: it carries the
        version a client saves against, and another container may have moved it."""
        (state,) = self.states(principal, [attempt_id])
        if state is None:
            raise NotFound(f"attempt {attempt_id} not found")
        return state

    def info(self, principal: Principal, attempt_id: UUID) -> AttemptInfo:
        """The attempt with its scenario, assignment and trainee (cached for the info
        TTL; it carries no version, so a briefly stale copy misleads no save)."""
        key = ("info", attempt_id, viewer(principal))
        cached = self.cache.get(principal.org_id, key)
        if cached is not MISSING:
            # The copy was made for this viewer; whether they still see the
            # attempt (a member who left the team does not) is asked again, with
            # the membership, in the round trip a cached answer costs anyway.
            if self.db.query(principal, _VISIBLE, self._params(principal, id=attempt_id)):
                return cached
            self.cache.invalidate(principal.org_id, key)
            raise NotFound(f"attempt {attempt_id} not found")
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

    def mixed_reads(
        self,
        principal: Principal,
        items: list[tuple[MixedKind, UUID]],
        conn: Connection | None = None,
    ) -> list[AttemptState | AttemptInfo | ScenarioStatistics | None]:
        """States, infos and scenario statistics of any attempts in one statement,
        in the order of ``items``; None for an attempt the caller cannot see.
        Always from the database (one trip answers all; the cache would save none)."""
        ids: dict[str, list[UUID]] = {"state": [], "info": [], "stats": []}
        for kind, attempt_id in items:
            ids[kind].append(attempt_id)
        params = self._params(
            principal, state_ids=ids["state"], ids=ids["info"], stats_ids=ids["stats"]
        )
        rows = self.db.query(principal, MIXED_READS, params, conn=conn)
        found: dict[tuple[str, UUID], AttemptState | AttemptInfo | ScenarioStatistics] = {}
        for row in rows:
            doc = row["doc"]
            if row["kind"] == "state":
                found["state", row["id"]] = AttemptState.model_validate(doc)
            elif row["kind"] == "info":
                found["info", row["id"]] = _info_from_row(doc)
            else:
                found["stats", row["id"]] = ScenarioStatistics.model_validate(doc)
        return [found.get((kind, attempt_id)) for kind, attempt_id in items]

    # -- writes --------------------------------------------------------------
    #
    # Each write takes an optional ``conn``: the open transaction of a caller
    # that must commit something with it (an Idempotency-Key record). Without
    # one, the write is its own transaction.

    def start(
        self, principal: Principal, body: StartAttempt, conn: Connection | None = None
    ) -> AttemptState:
        """Start an attempt of the caller on a scenario their org can use."""
        params = self._params(
            principal,
            scenario_id=body.scenario_id,
            assignment_id=body.assignment_id,
            vapi_call_id=body.vapi_call_id,
            metadata=Jsonb(body.metadata),
        )
        (row,) = self.db.query(principal, _START, params, idempotent=False, conn=conn)
        if row["verdict"] == "scenario_not_found":
            raise NotFound(
                f"scenario {body.scenario_id} does not exist, is not active or is not the"
                " caller's org's",
                errors=[{"field": "body.scenario_id", "message": "no such active scenario"}],
            )
        if row["verdict"] == "assignment_not_found":
            raise NotFound(
                f"assignment {body.assignment_id} is not the caller's assignment for this scenario",
                errors=[{"field": "body.assignment_id", "message": "no such assignment"}],
            )
        if row["verdict"] == "call_linked":
            raise Conflict(
                "vapi_call_id is already linked to another attempt of this organization",
                errors=[{"field": "body.vapi_call_id", "message": "already linked"}],
            )
        return AttemptState.model_validate(row)

    def save_drafts(
        self,
        principal: Principal,
        drafts: list[tuple[UUID, Draft]],
        conn: Connection | None = None,
    ) -> list[DraftVerdict]:
        """Autosave any number of attempts in one statement, each judged on its own
        by ``attempt_verdict()``; verdicts in the order of ``drafts``."""
        items = [
            {"ord": ord_, "attempt_id": str(attempt_id), **draft.model_dump(exclude_none=True)}
            for ord_, (attempt_id, draft) in enumerate(drafts)
        ]
        params = self._params(principal, items=Jsonb(items))
        # Not retried: after a commit whose answer was lost, a repeat would conflict.
        rows = self.db.query(principal, SAVE_DRAFTS, params, idempotent=False, conn=conn)
        verdicts = [DraftVerdict.model_validate(row) for row in rows]
        self.forget(principal, [v.attempt_id for v in verdicts if v.verdict == "ok"])
        return verdicts

    def save(self, principal: Principal, attempt_id: UUID, draft: Draft) -> SavedDraft:
        """The autosave: written only on ``draft.expected_version`` of an attempt the
        caller owns and is still practising."""
        (verdict,) = self.save_drafts(principal, [(attempt_id, draft)])
        rules.refuse(
            verdict.verdict,
            attempt_id,
            action="save",
            current_version=verdict.version,
            status=verdict.status,
        )
        return SavedDraft(id=attempt_id, version=verdict.version, updated_at=verdict.updated_at)

    def log_activities(
        self,
        principal: Principal,
        logs: list[tuple[UUID, list[ActivityEvent]]],
        conn: Connection | None = None,
    ) -> list[ActivityVerdict]:
        """Append events to the logs of any number of attempts in one statement,
        each judged on its own; verdicts in the order of ``logs``."""
        items = [
            {
                "ord": ord_,
                "attempt_id": str(attempt_id),
                "events": [e.model_dump(mode="json", exclude_none=True) for e in events],
            }
            for ord_, (attempt_id, events) in enumerate(logs)
        ]
        params = self._params(principal, items=Jsonb(items))
        rows = self.db.query(principal, LOG_ACTIVITY, params, idempotent=False, conn=conn)
        verdicts = [ActivityVerdict.model_validate(row) for row in rows]
        self.forget(principal, [v.attempt_id for v in verdicts if v.verdict == "ok"])
        return verdicts

    def log_activity(
        self,
        principal: Principal,
        attempt_id: UUID,
        events: list[ActivityEvent],
        conn: Connection | None = None,
    ) -> ActivityLogged:
        """Append events to the log of an attempt the caller owns and is practising."""
        (verdict,) = self.log_activities(principal, [(attempt_id, events)], conn)
        rules.refuse(
            verdict.verdict,
            attempt_id,
            action="activity",
            current_version=verdict.version,
            status=verdict.status,
        )
        return ActivityLogged(attempt_id=attempt_id, inserted=verdict.inserted)

    def submit_many(
        self,
        principal: Principal,
        submissions: list[tuple[UUID, SubmitAttempt]],
        conn: Connection | None = None,
    ) -> list[SubmitVerdict]:
        """End, clean up or score any number of attempts in one statement, each as
        its verdict says; verdicts in the order of ``submissions``."""
        items = [
            {"ord": ord_, "attempt_id": str(attempt_id), **body.as_item()}
            for ord_, (attempt_id, body) in enumerate(submissions)
        ]
        params = self._params(principal, items=Jsonb(items))
        # Safe to retry: a repeat after a lost commit answers the stored result.
        rows = self.db.query(principal, SUBMIT, params, conn=conn)
        verdicts = [_submit_verdict(row) for row in rows]
        moved = [
            v.result for v in verdicts if v.verdict in ("ended", "scored") and v.result is not None
        ]
        self.forget(
            principal,
            [r.id for r in moved],
            scenario_ids={r.scenario_id for r in moved},
            members={r.clerk_user_id for r in moved},
        )
        return verdicts

    def submit(
        self,
        principal: Principal,
        attempt_id: UUID,
        body: SubmitAttempt,
        conn: Connection | None = None,
    ) -> Submission:
        """End the attempt (its owner, or a coach cleaning it up), or score it once
        it has completed (a coach); a repeat answers the stored result."""
        (verdict,) = self.submit_many(principal, [(attempt_id, body)], conn)
        result = verdict.result
        rules.refuse(
            verdict.verdict,
            attempt_id,
            action="submit",
            current_version=result.version if result else None,
            status=result.status if result else None,
            changed=verdict.changed,
        )
        assert result is not None  # every success carries the result
        return Submission(result=result, ended_now=verdict.verdict == "ended")

    # -- statistics ----------------------------------------------------------

    def _scenario_of(self, principal: Principal, attempt_id: UUID) -> UUID:
        return self._one(principal, _SCENARIO_OF, attempt_id)["scenario_id"]

    def statistics(self, principal: Principal, attempt_id: UUID) -> ScenarioStatistics:
        """Statistics of the attempt's scenario, as far as the caller sees."""
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

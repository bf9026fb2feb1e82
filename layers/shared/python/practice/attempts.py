"""The attempt lifecycle: start, state, info, autosave, activity, submit, uploads,
statistics and cache maintenance (seed 004's consolidated endpoint).

Every statement is scoped twice: by ``org_id = <caller's org>`` here and by
row-level security in the database. Success paths are one statement, so one
network round trip with the RLS context (see ``Database.run``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from practice.attempt_models import (
    ActivityEvent,
    ConfirmUpload,
    Optimize,
    RequestUpload,
    SaveAttempt,
    StartAttempt,
    SubmitAttempt,
)
from practice.auth import Principal, Role
from practice.cache import MISSING, TenantCache
from practice.config import Settings
from practice.db import Database
from practice.encoding import json_row
from practice.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionRequired,
    ServiceUnavailable,
    UnprocessableContent,
)
from practice.storage import s3_client

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

_STATE = f"select {STATE_COLUMNS} from scenario_attempts where id = %s and org_id = %s"

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
where a.id = %s and a.org_id = %s
"""

# The conditional autosave: it writes only when the version the client last
# saw is still current and the attempt is still in progress.
_SAVE = """
update scenario_attempts
   set answers = coalesce(%(answers)s, answers),
       auto_save_data = coalesce(%(auto_save_data)s, auto_save_data),
       version = version + 1,
       last_activity_at = now(),
       updated_at = now()
 where id = %(id)s and org_id = %(org_id)s and clerk_user_id = %(user_id)s
   and version = %(expected_version)s and status = 'in_progress'
returning id, version, updated_at
"""

_CURRENT = """
select version, status, clerk_user_id from scenario_attempts where id = %s and org_id = %s
"""

_ACTIVITY = """
with target as (
    select id, org_id from scenario_attempts
     where id = %(id)s and org_id = %(org_id)s and clerk_user_id = %(user_id)s
),
inserted as (
    insert into attempt_activity (org_id, attempt_id, user_id, event_type, payload, occurred_at)
    select t.org_id, t.id, %(user_id)s, e.event_type, coalesce(e.payload, '{}'::jsonb),
           coalesce(e.occurred_at, now())
      from target t
     cross join jsonb_to_recordset(%(events)s)
           as e(event_type text, payload jsonb, occurred_at timestamptz)
    returning occurred_at
),
touched as (
    update scenario_attempts a
       set last_activity_at = greatest(
               a.last_activity_at, least((select max(occurred_at) from inserted), now()))
      from target t
     where a.id = t.id and a.status = 'in_progress'
    returning a.id
)
select (select count(*) from target) as found, (select count(*) from inserted) as inserted
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
 where id = %(id)s and org_id = %(org_id)s and status = 'in_progress'
returning {RESULT_COLUMNS}
"""

_RESULT = f"select {RESULT_COLUMNS} from scenario_attempts where id = %s and org_id = %s"

_VALIDATE_UPLOAD = "select * from validate_attempt_upload(%s)"

_RECORD_RECORDING = """
update scenario_attempts
   set recording_path = %(key)s, version = version + 1, updated_at = now()
 where id = %(id)s and org_id = %(org_id)s
   and (status = 'in_progress' or recording_path is null)
returning id, version, recording_path, updated_at
"""

_STATISTICS = "select * from get_attempt_statistics(%s)"
_ACTIVE = "select * from get_active_attempts(%s)"
_SCENARIO_OF = "select scenario_id from scenario_attempts where id = %s and org_id = %s"
_STATES = f"select {STATE_COLUMNS} from scenario_attempts where id = any(%s) and org_id = %s"


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _tag(attempt_id: UUID) -> str:
    return f"attempt:{attempt_id}"


def _viewer(principal: Principal) -> str:
    # Cached reads differ by who looks (RLS): admins of an org all see the
    # same rows, managers and trainees each see their own slice.
    return "admin" if principal.role is Role.ADMIN else f"{principal.role}:{principal.user_id}"


def attempt_path(attempt_id: UUID) -> str:
    """The attempt's URL path, for ``Location`` headers."""
    return f"/attempts/{attempt_id}"


def parse_version_header(raw: str | None, header: str = "If-Match") -> int | None:
    """The version inside an ``If-Match`` value (``"3"``, ``W/"3"`` or ``3``)."""
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    # Versions are positive int4s: ten digits at most.
    if not value.isdigit() or len(value) > 10:
        raise BadRequest(f"the {header} value {raw[:40]!r} is not an attempt version", field=header)
    return int(value)


def etag_matches(raw: str | None, version: int) -> bool:
    """Whether an ``If-None-Match`` value (``*``, one tag or a list) names ``version``."""
    if raw is None:
        return False
    if raw.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/").strip('"') for tag in raw.split(","))
    return str(version) in tags


def etag(version: int) -> str:
    """The strong ETag of an attempt version."""
    return f'"{version}"'


@dataclass
class AttemptService:
    """The attempt endpoint's domain, bound to the container's singletons."""

    db: Database
    cache: TenantCache
    settings: Settings
    s3_override: Any = None

    @property
    def s3(self) -> Any:
        """The S3 client (created on first use)."""
        return self.s3_override or s3_client(self.settings.s3_endpoint_url)

    # -- reads ---------------------------------------------------------------

    def state(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        """The attempt's working state (cached for the state TTL)."""
        key = ("state", attempt_id, _viewer(principal))
        return self._cached(
            principal,
            key,
            self.settings.cache_ttl_state,
            _tag(attempt_id),
            lambda: json_row(self._one(principal, _STATE, attempt_id)),
        )

    def _cached(
        self, principal: Principal, key: tuple, ttl: float, tag: str, load: Any
    ) -> dict[str, Any]:
        cached = self.cache.get(principal.org_id, key)
        if cached is not MISSING:
            return cached
        value = load()
        self.cache.set(principal.org_id, key, value, ttl, tags=[tag])
        return value

    def _one(self, principal: Principal, sql: str, attempt_id: UUID) -> dict[str, Any]:
        rows = self.db.query(principal, sql, [attempt_id, principal.org_id])
        if not rows:
            raise NotFound(f"attempt {attempt_id} not found")
        return rows[0]

    def info(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        """The attempt with its scenario, assignment and trainee (cached for the info TTL)."""
        key = ("info", attempt_id, _viewer(principal))
        return self._cached(
            principal,
            key,
            self.settings.cache_ttl_info,
            _tag(attempt_id),
            lambda: self._load_info(principal, attempt_id),
        )

    def _load_info(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        row = json_row(self._one(principal, _INFO, attempt_id))
        return {
            "id": row["id"],
            "status": row["status"],
            "version": row["version"],
            "trainee": {"user_id": row["clerk_user_id"], "display_name": row["trainee_name"]},
            "scenario": {
                "id": row["scenario_id"],
                "title": row["scenario_title"],
                "difficulty": row["scenario_difficulty"],
                "category": row["scenario_category"],
            },
            "assignment": None
            if row["assignment_id"] is None
            else {
                "id": row["assignment_id"],
                "due_at": row["assignment_due_at"],
                "required": row["assignment_required"],
            },
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "duration_seconds": row["duration_seconds"],
            "submitted_at": row["submitted_at"],
            "score": row["score"],
            "recording_path": row["recording_path"],
            "updated_at": row["updated_at"],
        }

    # -- writes --------------------------------------------------------------

    def _forget(self, principal: Principal, attempt_id: UUID) -> None:
        self.cache.invalidate_tag(principal.org_id, _tag(attempt_id))

    def start(self, principal: Principal, body: StartAttempt) -> dict[str, Any]:
        """Start an attempt of the caller on a scenario their org can use."""
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "scenario_id": body.scenario_id,
            "assignment_id": body.assignment_id,
            "vapi_call_id": body.vapi_call_id,
            "metadata": Jsonb(body.metadata),
        }
        try:
            rows = self.db.query(principal, _START, params, idempotent=False)
        except UniqueViolation as exc:
            raise Conflict(
                "vapi_call_id is already linked to an attempt", field="vapi_call_id"
            ) from exc
        if rows:
            return json_row(rows[0])
        diagnosis = self.db.query(principal, _START_DIAGNOSIS, params)[0]
        if not diagnosis["scenario_ok"]:
            raise UnprocessableContent(
                f"scenario {body.scenario_id} does not exist or is not active",
                field="scenario_id",
            )
        raise UnprocessableContent(
            f"assignment {body.assignment_id} is not the caller's assignment for this scenario",
            field="assignment_id",
        )

    def _current(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        return self._one(principal, _CURRENT, attempt_id)

    def save(
        self, principal: Principal, attempt_id: UUID, body: SaveAttempt, if_match: str | None
    ) -> dict[str, Any]:
        """The autosave: a conditional write on ``expected_version`` (or ``If-Match``)."""
        expected = body.expected_version or parse_version_header(if_match)
        if expected is None:
            raise PreconditionRequired(
                "send expected_version in the body or the version in If-Match",
                field="expected_version",
            )
        params = {
            "id": attempt_id,
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "answers": _json(body.answers),
            "auto_save_data": _json(body.auto_save_data),
            "expected_version": expected,
        }
        # Not retried: after a commit whose answer was lost, a repeat would 409.
        rows = self.db.query(principal, _SAVE, params, idempotent=False)
        if rows:
            self._forget(principal, attempt_id)
            return json_row(rows[0])
        # Why nothing was written, read after the fact: under READ COMMITTED
        # this sees the write that beat us, so current_version is the new one.
        current = self._current(principal, attempt_id)
        if current["clerk_user_id"] != principal.user_id:
            raise Forbidden("only the trainee who owns the attempt may save it")
        if current["status"] != "in_progress":
            raise Conflict(
                f"attempt {attempt_id} is {current['status']}, no longer in progress",
                current_version=current["version"],
                status_value=current["status"],
            )
        raise Conflict(
            f"attempt {attempt_id} is at version {current['version']}, not {expected}",
            current_version=current["version"],
            expected_version=expected,
        )

    def log_activity(
        self, principal: Principal, attempt_id: UUID, events: list[ActivityEvent]
    ) -> dict[str, Any]:
        """Append events to the attempt's activity log in one statement."""
        payload = [e.model_dump(mode="json", exclude_none=True) for e in events]
        params = {
            "id": attempt_id,
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "events": Jsonb(payload),
        }
        row = self.db.query(principal, _ACTIVITY, params, idempotent=False)[0]
        if not row["found"]:
            self._current(principal, attempt_id)  # 404 when the caller cannot see it
            raise Forbidden("only the trainee who owns the attempt may log its activity")
        self._forget(principal, attempt_id)
        return {"attempt_id": str(attempt_id), "inserted": row["inserted"]}

    def submit(
        self, principal: Principal, attempt_id: UUID, body: SubmitAttempt
    ) -> tuple[dict[str, Any], bool]:
        """End the attempt (idempotent); returns the result and whether this call ended it."""
        scoring = body.scoring_fields_sent()
        if scoring and not principal.can_coach:
            raise Forbidden(
                f"a trainee cannot score an attempt; remove {', '.join(scoring)}",
                fields=scoring,
            )
        params = {
            "id": attempt_id,
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "status": body.status,
            "answers": _json(body.answers),
            "transcript_text": body.transcript_text,
            "score": body.score,
            "score_breakdown": _json(body.score_breakdown),
            "kpis": _json(body.kpis),
            "feedback_text": body.feedback_text,
            "feedback_json": _json(body.feedback_json),
            "manager_comments": body.manager_comments,
        }
        rows = self.db.query(principal, _SUBMIT, params)
        if rows:
            self._forget(principal, attempt_id)
            self.cache.invalidate_tag(principal.org_id, f"scenario:{rows[0]['scenario_id']}")
            return json_row(rows[0]), True
        return json_row(self._one(principal, _RESULT, attempt_id)), False

    # -- uploads -------------------------------------------------------------

    def _recording_prefix(self, principal: Principal, attempt_id: UUID) -> str:
        return f"recordings/{principal.org_id}/{attempt_id}/"

    def _is_recording_key(self, principal: Principal, attempt_id: UUID, key: str) -> bool:
        # Exactly the shape request_upload issues: prefix, a UUID, an extension.
        prefix = re.escape(self._recording_prefix(principal, attempt_id))
        return re.fullmatch(prefix + r"[0-9a-f-]{36}\.[a-z0-9.+-]{1,20}", key) is not None

    def _check_uploadable(self, principal: Principal, attempt_id: UUID) -> None:
        verdict = self.db.query(principal, _VALIDATE_UPLOAD, [attempt_id])[0]
        if verdict["reason"] == "not_found":
            raise NotFound(f"attempt {attempt_id} not found")
        if verdict["reason"] == "not_owner":
            raise Forbidden("only the trainee who owns the attempt may upload its recording")
        if not verdict["valid"]:
            raise Conflict(f"attempt {attempt_id} does not accept a recording: {verdict['reason']}")

    def request_upload(
        self, principal: Principal, attempt_id: UUID, body: RequestUpload
    ) -> dict[str, Any]:
        """A presigned S3 POST for the recording, bound to type, size and key."""
        content_type = body.content_type.lower()
        if content_type not in self.settings.recording_content_types:
            allowed = ", ".join(self.settings.recording_content_types)
            raise UnprocessableContent(
                f"content_type must be one of {allowed}", field="content_type"
            )
        if body.size_bytes > self.settings.recording_max_bytes:
            raise UnprocessableContent(
                f"size_bytes exceeds the limit of {self.settings.recording_max_bytes}",
                field="size_bytes",
            )
        self._check_uploadable(principal, attempt_id)
        extension = content_type.split("/", 1)[1]
        key = f"{self._recording_prefix(principal, attempt_id)}{uuid.uuid4()}.{extension}"
        expiry = self.settings.upload_url_expiry_seconds
        post = self.s3.generate_presigned_post(
            Bucket=self.settings.uploads_bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self.settings.recording_max_bytes],
                ["starts-with", "$key", self._recording_prefix(principal, attempt_id)],
            ],
            ExpiresIn=expiry,
        )
        expires_at = datetime.now(UTC) + timedelta(seconds=expiry)
        return {
            "url": post["url"],
            "fields": post["fields"],
            "key": key,
            "max_bytes": self.settings.recording_max_bytes,
            "expires_at": expires_at.isoformat(),
        }

    def confirm_upload(
        self, principal: Principal, attempt_id: UUID, body: ConfirmUpload
    ) -> dict[str, Any]:
        """Check the uploaded object (present, size, type) and record its path.

        The POST policy is only as good as the storage that enforces it (moto,
        for one, does not), so these checks are what stand between a bad upload
        and ``recording_path``.
        """
        self._check_uploadable(principal, attempt_id)
        if not self._is_recording_key(principal, attempt_id, body.key):
            raise UnprocessableContent(
                "key is not a recording key this API issued for this attempt", field="key"
            )
        head = self._head(body.key)
        problem = self._recording_problem(head)
        if problem:
            self.s3.delete_object(Bucket=self.settings.uploads_bucket, Key=body.key)
            raise UnprocessableContent(
                f"the uploaded recording was refused: {problem}", field="key"
            )
        params = {"id": attempt_id, "org_id": principal.org_id, "key": body.key}
        rows = self.db.query(principal, _RECORD_RECORDING, params)
        if not rows:  # a concurrent confirm recorded one first
            raise Conflict(f"attempt {attempt_id} already has its recording")
        self._forget(principal, attempt_id)
        return json_row(rows[0] | {"size_bytes": head["ContentLength"]})

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.settings.uploads_bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise UnprocessableContent(f"nothing was uploaded at {key}", field="key") from exc
            raise ServiceUnavailable("the recording store did not answer", retry_after=5) from exc

    def _recording_problem(self, head: dict[str, Any]) -> str | None:
        size = head.get("ContentLength", 0)
        content_type = (head.get("ContentType") or "").split(";")[0].strip().lower()
        if size <= 0:
            return "the object is empty"
        if size > self.settings.recording_max_bytes:
            return f"{size} bytes exceeds the limit of {self.settings.recording_max_bytes}"
        if content_type not in self.settings.recording_content_types:
            return f"content type {content_type or 'missing'} is not an accepted audio type"
        return None

    # -- statistics and maintenance -----------------------------------------

    def _scenario_of(self, principal: Principal, attempt_id: UUID) -> UUID:
        return self._one(principal, _SCENARIO_OF, attempt_id)["scenario_id"]

    def statistics(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        """Seed 004's statistics for the attempt's scenario, as far as the caller sees."""
        scenario_id = self._scenario_of(principal, attempt_id)
        key = ("stats", scenario_id, _viewer(principal))

        def load() -> dict[str, Any]:
            rows = self.db.query(principal, _STATISTICS, [scenario_id])
            return json_row({"scenario_id": scenario_id, **(rows[0] if rows else {})})

        ttl = self.settings.cache_ttl_stats
        return self._cached(principal, key, ttl, f"scenario:{scenario_id}", load)

    def active(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        """In-progress attempts on the attempt's scenario with idle minutes (coaches)."""
        principal.require(Role.ADMIN, Role.MANAGER)
        scenario_id = self._scenario_of(principal, attempt_id)
        rows = self.db.query(principal, _ACTIVE, [scenario_id])
        return {"scenario_id": str(scenario_id), "attempts": [json_row(r) for r in rows]}

    def optimization(self, principal: Principal) -> dict[str, Any]:
        """Cache, pool and breaker state of this container (admins)."""
        principal.require(Role.ADMIN)
        return {"cache": self.cache.stats(principal.org_id), **self.db.stats()}

    def optimize(self, principal: Principal, body: Optimize) -> dict[str, Any]:
        """Clear this container's cache or preload attempt states into it (admins)."""
        principal.require(Role.ADMIN)
        if body.operation == "clear_cache":
            cleared = self.cache.clear_org(principal.org_id)
            return {"operation": "clear_cache", "cleared": cleared}
        if not body.attempt_ids:
            raise UnprocessableContent("preload needs attempt_ids", field="attempt_ids")
        rows = self.db.query(principal, _STATES, [body.attempt_ids, principal.org_id])
        for row in rows:
            state = json_row(row)
            self.cache.set(
                principal.org_id,
                ("state", row["id"], _viewer(principal)),
                state,
                self.settings.cache_ttl_state,
                tags=[_tag(row["id"])],
            )
        found = {row["id"] for row in rows}
        missing = [str(i) for i in body.attempt_ids if i not in found]
        return {"operation": "preload", "preloaded": len(rows), "not_found": missing}

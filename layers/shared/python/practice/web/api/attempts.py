"""The attempt lifecycle over HTTP (the consolidated attempt endpoint): start,
state, info, statistics, autosave, activity, submit, upload and the cache admin,
each at a URL of its own and at its ``?action=`` form; and ``/health``,
``/me``.

Endpoints are ``async def`` although psycopg blocks: Lambda hands a container
one request at a time, so blocking the event loop costs nothing, while a plain
``def`` would hop to a thread pool on every request.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from psycopg import Connection
from pydantic import Field
from starlette.responses import Response

from practice.attempts.cache_admin import (
    CacheAdmin,
    CacheCleared,
    CachePreloaded,
    CacheReport,
    ClearCache,
    Optimize,
    Preload,
    optimize_operation,
)
from practice.attempts.models import (
    ActiveAttempts,
    ActivityBody,
    ActivityLogged,
    AttemptInfo,
    AttemptResult,
    AttemptState,
    ConfirmUpload,
    Draft,
    RecordingConfirmed,
    RequestUpload,
    SaveAttempt,
    SavedDraft,
    ScenarioStatistics,
    StartAttempt,
    SubmitAttempt,
    UploadTicket,
)
from practice.attempts.recordings import RecordingService
from practice.attempts.service import AttemptService
from practice.core.db import Database
from practice.core.directory import Member, describe_member
from practice.core.health import HealthReport, health_report
from practice.web.etags import IF_MATCH_PATTERN, etag, etag_matches, expected_version
from practice.web.params import In, RouteParams
from practice.web.routes import ETAG, LOCATION, RETRY_AFTER, Call, OneOf, Reply, Router

router = Router()

AttemptId = Annotated[UUID, In("path", "attemptId")]


class OfAttempt(RouteParams):
    attempt_id: AttemptId


class StateParams(RouteParams):
    attempt_id: AttemptId
    if_none_match: Annotated[
        str | None,
        In("header", "If-None-Match"),
        Field(description="ETags (or *): 304 when one names the version"),
    ] = None


class StatsParams(RouteParams):
    attempt_id: AttemptId
    kind: Annotated[
        Literal["stats", "active", "optimization"],
        In("query", "type"),
        Field(description="the scenario's statistics, its active attempts, or the cache"),
    ] = "stats"


class SaveParams(RouteParams):
    attempt_id: AttemptId
    if_match: Annotated[
        str | None,
        In("header", "If-Match"),
        Field(pattern=IF_MATCH_PATTERN, description='the version the save builds on, as "3"'),
    ] = None


@router.get(
    "/health",
    public=True,
    replies=[Reply(200, HealthReport), Reply(503, HealthReport, [RETRY_AFTER], "down")],
)
async def get_health(call: Call[None, None], db: Database) -> Response:
    """Whether the function and its database serve (no authentication)."""
    report = health_report(db)
    if report.status == "ok":
        return call.reply(200, report)
    return call.reply(503, report, {"Retry-After": str(db.breaker.retry_after())})


@router.get("/me", replies=[Reply(200, Member)], errors=(404,))
async def get_me(call: Call[None, None], db: Database) -> Response:
    """The caller's principal, org and role as the database knows them."""
    return call.reply(200, describe_member(db, call.principal))


@router.post(
    "/attempts",
    body=StartAttempt,
    replies=[Reply(201, AttemptState, [LOCATION, ETAG], "started")],
    errors=(404, 409),
    idempotent=True,
)
async def start_attempt(call: Call[None, StartAttempt], attempts: AttemptService) -> Response:
    """Start an attempt on a scenario of the caller's org (or a built-in one)."""

    def respond(conn: Connection | None) -> Response:
        state = attempts.start(call.principal, call.body, conn)
        headers = {"Location": f"/attempts/{state.id}", "ETag": etag(state.version)}
        return call.reply(201, state, headers)

    return await call.once(respond)


@router.get(
    "/attempts/{attemptId}",
    params=StateParams,
    replies=[
        Reply(200, AttemptState, [ETAG]),
        Reply(304, None, [ETAG], "the version is unchanged"),
    ],
    errors=(404,),
    action="state",
)
async def attempt_state(call: Call[StateParams, None], attempts: AttemptService) -> Response:
    """The attempt's working state: drafts, timing and the version a save builds on."""
    state = attempts.state(call.principal, call.params.attempt_id)
    headers = {"ETag": etag(state.version)}
    if etag_matches(call.params.if_none_match, state.version):
        return call.reply(304, None, headers)
    return call.reply(200, state, headers)


@router.get(
    "/attempts/{attemptId}/info",
    params=OfAttempt,
    replies=[Reply(200, AttemptInfo)],
    errors=(404,),
    action="info",
)
async def attempt_info(call: Call[OfAttempt, None], attempts: AttemptService) -> Response:
    """The attempt with its scenario, assignment and trainee."""
    return call.reply(200, attempts.info(call.principal, call.params.attempt_id))


@router.get(
    "/attempts/{attemptId}/stats",
    params=StatsParams,
    replies=[Reply(200, ScenarioStatistics | ActiveAttempts | CacheReport)],
    errors=(404,),
    action="stats",
)
async def attempt_statistics(
    call: Call[StatsParams, None], attempts: AttemptService, cache_admin: CacheAdmin
) -> Response:
    """Statistics of the attempt's scenario (type=stats), its attempts in progress
    (active: coaches), or this container's cache for the org (optimization: admins)."""
    principal, attempt_id = call.principal, call.params.attempt_id
    if call.params.kind == "active":
        return call.reply(200, attempts.active(principal, attempt_id))
    if call.params.kind == "optimization":
        return call.reply(200, cache_admin.report(principal, attempt_id))
    return call.reply(200, attempts.statistics(principal, attempt_id))


@router.patch(
    "/attempts/{attemptId}",
    params=SaveParams,
    body=SaveAttempt,
    replies=[Reply(200, SavedDraft, [ETAG], "saved")],
    errors=(404, 409, 428),
    action="save",
)
async def save_attempt(call: Call[SaveParams, SaveAttempt], attempts: AttemptService) -> Response:
    """Autosave the drafts on the version they build on (expected_version or If-Match)."""
    body = call.body
    draft = Draft(
        answers=body.answers,
        auto_save_data=body.auto_save_data,
        expected_version=expected_version(body.expected_version, call.params.if_match),
    )
    saved = attempts.save(call.principal, call.params.attempt_id, draft)
    return call.reply(200, saved, {"ETag": etag(saved.version)})


@router.patch(
    "/attempts/{attemptId}/optimize",
    params=OfAttempt,
    body=OneOf((ClearCache, Preload), optimize_operation),
    replies=[Reply(200, CacheCleared | CachePreloaded)],
    errors=(404,),
    action="optimize",
)
async def optimize_cache(call: Call[OfAttempt, Optimize], cache_admin: CacheAdmin) -> Response:
    """Clear the org's share of this container's cache, or preload attempts' info (admins)."""
    return call.reply(200, cache_admin.optimize(call.principal, call.params.attempt_id, call.body))


@router.post(
    "/attempts/{attemptId}/activity",
    params=OfAttempt,
    body=ActivityBody,
    replies=[Reply(201, ActivityLogged, description="logged")],
    errors=(404, 409),
    idempotent=True,
    action="activity",
)
async def log_activity(call: Call[OfAttempt, ActivityBody], attempts: AttemptService) -> Response:
    """Append events to the attempt's activity log (its owner, while in progress)."""
    principal, attempt_id, events = call.principal, call.params.attempt_id, call.body.events
    return await call.once(
        lambda conn: call.reply(201, attempts.log_activity(principal, attempt_id, events, conn))
    )


@router.post(
    "/attempts/{attemptId}/submit",
    params=OfAttempt,
    body=SubmitAttempt,
    replies=[Reply(200, AttemptResult, [ETAG], "ended, scored, or the stored result")],
    errors=(404, 409),
    idempotent=True,
    action="submit",
)
async def submit_attempt(
    call: Call[OfAttempt, SubmitAttempt], attempts: AttemptService
) -> Response:
    """End the attempt, clean it up (a coach: status abandoned, nothing else) or
    score it once completed (a coach); a repeat answers the stored result."""

    def respond(conn: Connection | None) -> Response:
        result = attempts.submit(call.principal, call.params.attempt_id, call.body, conn).result
        return call.reply(200, result, {"ETag": etag(result.version)})

    return await call.once(respond)


def _upload_step(document: object) -> type[RequestUpload] | type[ConfirmUpload]:
    confirming = isinstance(document, dict) and document.get("step") == "confirm"
    return ConfirmUpload if confirming else RequestUpload


@router.post(
    "/attempts/{attemptId}/upload",
    params=OfAttempt,
    body=OneOf((RequestUpload, ConfirmUpload), _upload_step),
    replies=[
        Reply(201, UploadTicket, description="a presigned POST for the recording"),
        Reply(200, RecordingConfirmed, description="the recording, checked and recorded"),
    ],
    errors=(404, 409),
    action="upload",
)
async def upload_recording(
    call: Call[OfAttempt, RequestUpload | ConfirmUpload], recordings: RecordingService
) -> Response:
    """Step 1: a presigned S3 POST for the recording; step 2 (step: confirm): check
    the uploaded object and record it on the attempt."""
    principal, attempt_id = call.principal, call.params.attempt_id
    if isinstance(call.body, ConfirmUpload):
        return call.reply(200, recordings.confirm_upload(principal, attempt_id, call.body))
    return call.reply(201, recordings.request_upload(principal, attempt_id, call.body))


router.moved("POST", "/attempts/{attemptId}", action="batch", to="/attempts/batch")

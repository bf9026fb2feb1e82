"""The consolidated attempt endpoint: wiring of routes to the `practice` domain.

Routes are ``async def`` although psycopg blocks: Lambda hands a container one
request at a time, so blocking the event loop costs nothing, while a plain
``def`` route would hop to Starlette's thread pool on every request. Where many
requests share a process (the local gateway, the concurrency tests), each
thread runs its own loop (``ensure_event_loop``).
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from psycopg import Connection

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
from practice.cache import TenantCache
from practice.cache_admin import CacheAdmin, CacheCleared, CachePreloaded, CacheReport, Optimize
from practice.config import get_settings
from practice.db import Database
from practice.directory import Member, describe_member
from practice.health import HealthReport, health_report
from practice.idempotency import Idempotency
from practice.web import (
    Callers,
    In,
    RouteParams,
    create_app,
    create_handler,
    etag,
    etag_matches,
    expected_version,
    json_body,
    json_response,
    parameters,
    problem_responses,
    read_body,
    read_json,
    read_params,
    request_body,
    validate_body,
)
from practice.web.idempotency import (
    REPLAY_HEADER,
    KeyHeader,
    in_flight_responses,
    refuse_key,
    respond_once,
)

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
attempts = AttemptService(db, cache, settings)
recordings = RecordingService(db, cache, settings)
cache_admin = CacheAdmin(db, attempts)
idempotency = Idempotency(db, settings.idempotency_ttl_seconds)
app = create_app(
    title="Practice attempts API",
    max_body_bytes=settings.max_body_bytes,
    public_paths=frozenset({"/health"}),
)
callers = Callers(db, cache, settings)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 422, 503)


@app.get(
    "/health",
    responses={200: json_body(HealthReport), 503: json_body(HealthReport, description="down")},
)
async def get_health() -> Response:
    """Whether the function and its database serve (no authentication)."""
    report = health_report(db)
    if report.status == "ok":
        return json_response(report)
    return json_response(report, 503, {"Retry-After": str(db.breaker.retry_after())})


@app.get("/me", responses={200: json_body(Member)} | problem_responses(401, 403, 404, 503))
async def get_me(request: Request) -> Response:
    """The caller's principal, org and role as the database knows them."""
    return json_response(describe_member(db, callers(request)))


# Routes take the Request and read their parameters in one step (practice.web.params).
class StartParams(RouteParams):
    idempotency_key: KeyHeader = None


class ReadParams(RouteParams):
    attempt_id: Annotated[UUID, In("path", "attemptId")]
    action: Annotated[Literal["state", "info", "stats"], In("query", "action")] = "state"
    stats_type: Annotated[Literal["stats", "active", "optimization"], In("query", "type")] = "stats"
    if_none_match: Annotated[str | None, In("header", "If-None-Match")] = None


class ActParams(RouteParams):
    attempt_id: Annotated[UUID, In("path", "attemptId")]
    action: Annotated[Literal["activity", "submit", "upload", "batch"], In("query", "action")]
    idempotency_key: KeyHeader = None


class ChangeParams(RouteParams):
    attempt_id: Annotated[UUID, In("path", "attemptId")]
    action: Annotated[Literal["save", "optimize"], In("query", "action")]
    if_match: Annotated[str | None, In("header", "If-Match")] = None


@app.post(
    "/attempts",
    status_code=201,
    responses={201: json_body(AttemptState) | {"headers": REPLAY_HEADER}}
    | problem_responses(400, 401, 403, 413, 422, 503)
    | in_flight_responses(),
    openapi_extra=request_body(StartAttempt) | parameters(StartParams),
)
async def start_attempt(request: Request) -> Response:
    """Start an attempt on a scenario of the caller's org."""
    principal = callers(request)
    key = read_params(request, StartParams).idempotency_key
    body = await read_body(request, StartAttempt)

    def respond(conn: Connection | None) -> Response:
        state = attempts.start(principal, body, conn)
        headers = {"Location": f"/attempts/{state.id}", "ETag": etag(state.version)}
        return json_response(state, 201, headers)

    return await respond_once(idempotency, request, principal, key, respond)


@app.get(
    "/attempts/{attemptId}",
    responses={
        200: json_body(AttemptState, AttemptInfo, ScenarioStatistics, ActiveAttempts, CacheReport),
        304: {"description": "If-None-Match names the current version"},
    }
    | problem_responses(401, 403, 404, 422, 503),
    openapi_extra=parameters(ReadParams),
)
async def read_attempt(request: Request) -> Response:
    """`?action=state|info|stats[&type=stats|active|optimization]`."""
    principal = callers(request)
    asked = read_params(request, ReadParams)
    attempt_id, action, stats_type = asked.attempt_id, asked.action, asked.stats_type
    if action == "info":
        return json_response(attempts.info(principal, attempt_id))
    if action == "stats" and stats_type == "active":
        return json_response(attempts.active(principal, attempt_id))
    if action == "stats" and stats_type == "optimization":
        return json_response(cache_admin.report(principal, attempt_id))
    if action == "stats":
        return json_response(attempts.statistics(principal, attempt_id))
    state = attempts.state(principal, attempt_id)
    if etag_matches(asked.if_none_match, state.version):
        return Response(status_code=304, headers={"ETag": etag(state.version)})
    return json_response(state, headers={"ETag": etag(state.version)})


@app.post(
    "/attempts/{attemptId}",
    responses={
        200: json_body(AttemptResult, RecordingConfirmed) | {"headers": REPLAY_HEADER},
        201: json_body(ActivityLogged, UploadTicket, description="activity logged, upload")
        | {"headers": REPLAY_HEADER},
        308: {"description": "action=batch moved to POST /attempts/batch"},
    }
    | WRITE_ERRORS
    | in_flight_responses(),
    openapi_extra=request_body(ActivityBody, SubmitAttempt, RequestUpload, ConfirmUpload)
    | parameters(ActParams),
)
async def act_on_attempt(request: Request) -> Response:
    """`?action=activity|submit|upload` (`batch` moved to `/attempts/batch`)."""
    principal = callers(request)
    asked = read_params(request, ActParams)
    attempt_id, action, key = asked.attempt_id, asked.action, asked.idempotency_key
    if action == "batch":
        return RedirectResponse(f"{request.scope.get('root_path', '')}/attempts/batch", 308)
    if action == "activity":
        events = (await read_body(request, ActivityBody)).events

        def log(conn: Connection | None) -> Response:
            return json_response(attempts.log_activity(principal, attempt_id, events, conn), 201)

        return await respond_once(idempotency, request, principal, key, log)
    if action == "submit":
        body = await read_body(request, SubmitAttempt)

        def respond(conn: Connection | None) -> Response:
            result = attempts.submit(principal, attempt_id, body, conn).result
            return json_response(result, headers={"ETag": etag(result.version)})

        return await respond_once(idempotency, request, principal, key, respond)
    refuse_key(key, "an upload is safe to repeat without one")
    document = await read_json(request)
    if isinstance(document, dict) and document.get("step") == "confirm":
        confirm = validate_body(document, ConfirmUpload)
        return json_response(recordings.confirm_upload(principal, attempt_id, confirm))
    upload = validate_body(document, RequestUpload)
    return json_response(recordings.request_upload(principal, attempt_id, upload), 201)


@app.patch(
    "/attempts/{attemptId}",
    responses={200: json_body(SavedDraft, CacheCleared, CachePreloaded)}
    | WRITE_ERRORS
    | problem_responses(428),
    openapi_extra=request_body(SaveAttempt, Optimize) | parameters(ChangeParams),
)
async def change_attempt(request: Request) -> Response:
    """`?action=save|optimize`."""
    principal = callers(request)
    asked = read_params(request, ChangeParams)
    if asked.action == "optimize":
        return json_response(cache_admin.optimize(principal, await read_body(request, Optimize)))
    body = await read_body(request, SaveAttempt)
    draft = Draft(
        answers=body.answers,
        auto_save_data=body.auto_save_data,
        expected_version=expected_version(body.expected_version, asked.if_match),
    )
    saved = attempts.save(principal, asked.attempt_id, draft)
    return json_response(saved, headers={"ETag": etag(saved.version)})


handler = create_handler(
    app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

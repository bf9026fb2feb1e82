"""The consolidated attempt endpoint: wiring of routes to the `practice` domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from practice.attempt_models import (
    ActivityBatch,
    ConfirmUpload,
    Optimize,
    RequestUpload,
    SaveAttempt,
    StartAttempt,
    SubmitAttempt,
)
from practice.attempts import AttemptService, attempt_path, etag, etag_matches
from practice.auth import Principal
from practice.cache import TenantCache
from practice.config import get_settings
from practice.db import Database
from practice.health import describe_member, health_report
from practice.http import create_app, create_handler, principal_dependency, read_body

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
attempts = AttemptService(db, cache, settings)
app = create_app(title="Practice attempts API", max_body_bytes=settings.max_body_bytes)
Caller = Annotated[Principal, Depends(principal_dependency(db, cache, settings))]
AttemptId = Annotated[UUID, Path(alias="attemptId")]
GetAction = Literal["state", "info", "stats"]
PostAction = Literal["activity", "submit", "upload", "batch"]
PatchAction = Literal["save", "optimize"]
StatsType = Literal["stats", "active", "optimization"]


@app.get("/health")
async def get_health() -> JSONResponse:
    """Database reachability, pool and breaker state (no authentication)."""
    status, report = health_report(db)
    return JSONResponse(report, status_code=status)


@app.get("/me")
async def get_me(principal: Caller) -> dict[str, Any]:
    """The caller's principal, org and role as the database knows them."""
    return describe_member(db, principal)


@app.post("/attempts", status_code=201)
async def start_attempt(request: Request, principal: Caller) -> JSONResponse:
    """Start an attempt on a scenario of the caller's org."""
    state = attempts.start(principal, await read_body(request, StartAttempt))
    headers = {"Location": attempt_path(state["id"]), "ETag": etag(state["version"])}
    return JSONResponse(state, status_code=201, headers=headers)


@app.get("/attempts/{attemptId}")
async def read_attempt(
    attempt_id: AttemptId,
    principal: Caller,
    action: GetAction = "state",
    stats_type: Annotated[StatsType, Query(alias="type")] = "stats",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """`?action=state|info|stats[&type=stats|active|optimization]`."""
    if action == "info":
        return JSONResponse(attempts.info(principal, attempt_id))
    if action == "stats":
        if stats_type == "active":
            return JSONResponse(attempts.active(principal, attempt_id))
        if stats_type == "optimization":
            return JSONResponse(attempts.optimization(principal))
        return JSONResponse(attempts.statistics(principal, attempt_id))
    state = attempts.state(principal, attempt_id)
    tag = etag(state["version"])
    if etag_matches(if_none_match, state["version"]):
        return Response(status_code=304, headers={"ETag": tag})
    return JSONResponse(state, headers={"ETag": tag})


@app.post("/attempts/{attemptId}")
async def act_on_attempt(
    request: Request, attempt_id: AttemptId, principal: Caller, action: PostAction
) -> Response:
    """`?action=activity|submit|upload` (`batch` moved to `/attempts/batch`)."""
    if action == "batch":
        return RedirectResponse(f"{request.scope.get('root_path', '')}/attempts/batch", 308)
    if action == "activity":
        body = await read_body(request, ActivityBatch)
        return JSONResponse(
            attempts.log_activity(principal, attempt_id, body.events), status_code=201
        )
    if action == "submit":
        result, _ended_now = attempts.submit(
            principal, attempt_id, await read_body(request, SubmitAttempt)
        )
        return JSONResponse(result, headers={"ETag": etag(result["version"])})
    body = await read_body(request, RequestUpload | ConfirmUpload)
    if isinstance(body, ConfirmUpload):
        return JSONResponse(attempts.confirm_upload(principal, attempt_id, body))
    return JSONResponse(attempts.request_upload(principal, attempt_id, body), status_code=201)


@app.patch("/attempts/{attemptId}")
async def change_attempt(
    request: Request,
    attempt_id: AttemptId,
    principal: Caller,
    action: PatchAction,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """`?action=save|optimize`."""
    if action == "optimize":
        return JSONResponse(attempts.optimize(principal, await read_body(request, Optimize)))
    saved = attempts.save(principal, attempt_id, await read_body(request, SaveAttempt), if_match)
    return JSONResponse(saved, headers={"ETag": etag(saved["version"])})


handler = create_handler(app, base_path=settings.api_base_path)

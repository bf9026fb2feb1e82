"""The batch function: seed 004's batch operations behind ``POST /attempts/batch``,
wiring only (the domain is ``practice.batch``, its rules ``practice.attempts``).

Its contract is served at ``/attempts/batch/openapi.json`` (and ``…/docs``): the
API's ``/openapi.json`` belongs to the attempts function.
"""

from __future__ import annotations

from fastapi import Request, Response

from practice.attempts.service import AttemptService
from practice.batch.models import REQUESTS, BatchEnvelope, BatchResult
from practice.batch.service import BatchService
from practice.cache import TenantCache
from practice.config import get_settings
from practice.db import Database
from practice.idempotency import Idempotency
from practice.web import (
    Callers,
    RouteParams,
    create_app,
    create_handler,
    json_body,
    json_response,
    parameters,
    problem_responses,
    read_json,
    read_params,
    request_body,
    validate_body,
)
from practice.web.idempotency import REPLAY_HEADER, KeyHeader, in_flight_responses, respond_once

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
batch = BatchService(AttemptService(db, cache, settings), settings)
idempotency = Idempotency(db, settings.idempotency_ttl_seconds)
app = create_app(
    title="Practice batch API",
    max_body_bytes=settings.max_body_bytes,
    docs_prefix="/attempts/batch",
)
callers = Callers(db, cache, settings)


class BatchParams(RouteParams):
    idempotency_key: KeyHeader = None


@app.post(
    "/attempts/batch",
    responses={200: json_body(BatchResult) | {"headers": REPLAY_HEADER}}
    | problem_responses(400, 401, 403, 413, 422, 503)
    | in_flight_responses(),
    openapi_extra=request_body(*REQUESTS.values()) | parameters(BatchParams),
)
async def run_batch(request: Request) -> Response:
    """`batch_save`, `multiple_states`, `batch_activity`, `validate`, `batch_submit`:
    one outcome per item in request order, and a summary."""
    principal = callers(request)
    key = read_params(request, BatchParams).idempotency_key
    # Parsed once, validated twice: the operation names the shape of the items.
    document = await read_json(request)
    operation = validate_body(document, BatchEnvelope).operation
    body = validate_body(document, REQUESTS[operation])
    return await respond_once(
        idempotency,
        request,
        principal,
        key,
        lambda conn: json_response(batch.run(principal, body, conn)),
    )


handler = create_handler(
    app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

"""The batch function: seed 004's batch operations behind ``POST /attempts/batch``,
wiring only (the domain is ``practice.batch``, its rules ``practice.attempts``).

Its contract is served at ``/attempts/batch/openapi.json`` (and ``…/docs``): the
API's ``/openapi.json`` belongs to the attempts function.
"""

from __future__ import annotations

from starlette.responses import Response

from practice.attempts.service import AttemptService
from practice.batch.models import REQUESTS, BatchRequest, BatchResult, batch_operation
from practice.batch.service import BatchService
from practice.core.cache import TenantCache
from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.web import Call, PrincipalOf, Reply, create_api, create_handler
from practice.web.routes import OneOf

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
batch = BatchService(AttemptService(db, cache, settings), settings)
api = create_api(
    title="Practice batch API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(db, cache, settings),
    idempotency=Dedupe(db, settings.idempotency_ttl_seconds),
    docs_prefix="/attempts/batch",
)


@api.post(
    "/attempts/batch",
    body=OneOf(tuple(REQUESTS.values()), batch_operation),
    replies=[Reply(200, BatchResult, description="one outcome per item, in request order")],
    idempotent=True,
)
async def run_batch(call: Call[None, BatchRequest]) -> Response:
    """`batch_save`, `multiple_states`, `batch_activity`, `validate`, `batch_submit`:
    one outcome per item in request order, and a summary."""
    return await call.once(lambda conn: call.reply(200, batch.run(call.principal, call.body, conn)))


handler = create_handler(
    api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

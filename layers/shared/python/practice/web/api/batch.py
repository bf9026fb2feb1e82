"""The batch operations over HTTP: ``POST /attempts/batch``."""

from __future__ import annotations

from starlette.responses import Response

from practice.batch.models import REQUESTS, BatchRequest, BatchResult, batch_operation
from practice.batch.service import BatchService
from practice.web.routes import Call, OneOf, Reply, Router

router = Router()


@router.post(
    "/attempts/batch",
    body=OneOf(tuple(REQUESTS.values()), batch_operation),
    replies=[Reply(200, BatchResult, description="one outcome per item, in request order")],
    idempotent=True,
)
async def run_batch(call: Call[None, BatchRequest], batch: BatchService) -> Response:
    """`batch_save`, `multiple_states`, `batch_activity`, `validate`, `batch_submit`,
    `mixed_reads`: one outcome per item in request order, and a summary."""
    return await call.once(lambda conn: call.reply(200, batch.run(call.principal, call.body, conn)))

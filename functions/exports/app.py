"""The exports function: ``POST /exports``, ``GET /exports/{exportId}``,
``GET /exports`` (routes in ``practice.web.api.exports``, HTTP, ``handler``) and
the worker that writes each file from the exports queue (``worker``: SQS, batch
size 1, partial batch failures). Two Lambda functions share this module
(template.yaml: ExportsFunction and ExportsWorkerFunction).

Its contract is served at ``/exports/openapi.json`` (and ``…/docs``).
"""

from __future__ import annotations

from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.core.directory import Principals
from practice.events import consume_queue
from practice.exports.service import ExportService
from practice.exports.worker import ExportWorker
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import exports as export_routes

settings = get_settings()
# The worker holds one connection for the COPY stream and writes its progress
# (as the system) on another, alongside the HTTP side's usual pair.
db = Database(settings.model_copy(update={"db_pool_max": max(settings.db_pool_max, 3)}))
db.open()
principals = Principals(db, settings.cache_ttl_org)
exports = ExportService(db, settings)
export_worker = ExportWorker(db, settings)
api = create_api(
    title="Practice exports API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(principals, settings),
    idempotency=Dedupe(db, settings.idempotency_ttl_seconds),
    docs_prefix="/exports",
)
api.include(export_routes.router, exports=exports)

worker = consume_queue(
    export_worker.handle_record, budget_seconds=settings.export_worker_budget_seconds
)
handler = create_handler(
    api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

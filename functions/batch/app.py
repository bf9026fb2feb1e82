"""The batch function: the batch operations behind ``POST /attempts/batch``
(routes in ``practice.web.api.batch``, the domain in ``practice.batch``).

Its contract is served at ``/attempts/batch/openapi.json`` (and ``…/docs``): the
API's ``/openapi.json`` belongs to the attempts function.
"""

from __future__ import annotations

from practice.attempts.service import AttemptService
from practice.batch.service import BatchService
from practice.core.cache import TenantCache
from practice.core.config import get_settings
from practice.core.db import Database
from practice.core.dedupe import Dedupe
from practice.core.directory import Principals
from practice.web import PrincipalOf, create_api, create_handler
from practice.web.api import batch as batch_routes

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
principals = Principals(db, settings.cache_ttl_org)
batch = BatchService(AttemptService(db, cache, settings), settings)
api = create_api(
    title="Practice batch API",
    max_body_bytes=settings.max_body_bytes,
    principal_of=PrincipalOf(principals, settings),
    idempotency=Dedupe(db, settings.idempotency_ttl_seconds),
    docs_prefix="/attempts/batch",
)
api.include(batch_routes.router, batch=batch)

handler = create_handler(
    api.app, budget_seconds=settings.request_budget_seconds, base_path=settings.api_base_path
)

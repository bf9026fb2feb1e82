"""The consolidated attempt endpoint: wiring of routes to the `practice` domain."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from fastapi.responses import JSONResponse

from practice.auth import Principal
from practice.cache import TenantCache
from practice.config import get_settings
from practice.db import Database
from practice.health import describe_member, health_report
from practice.http import create_app, create_handler, principal_dependency

settings = get_settings()
db = Database(settings)
db.open()
cache = TenantCache(maxsize=settings.cache_max_entries)
app = create_app(title="Practice attempts API", max_body_bytes=settings.max_body_bytes)
caller = Depends(principal_dependency(db, cache, settings))


@app.get("/health")
async def get_health() -> JSONResponse:
    """Database reachability, pool and breaker state (no authentication)."""
    status, report = health_report(db)
    return JSONResponse(report, status_code=status)


@app.get("/me")
async def get_me(principal: Principal = caller) -> dict[str, Any]:
    """The caller's principal, org and role as the database knows them."""
    return describe_member(db, principal)


handler = create_handler(app, base_path=settings.api_base_path)

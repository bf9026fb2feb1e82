"""``python -m dev digest --preview <user>``: the weekly digest a manager would
get for the week that ended, written as HTML for a person to look at (nothing
is sent, nothing is recorded)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg

from dev.invoke import ensure_import_paths


def preview(admin_url: str, app_url: str, user: str, out: Path) -> Path:
    """Render ``user``'s digest into ``out``; raises LookupError for no such manager."""
    ensure_import_paths()
    from practice.core.config import Settings
    from practice.core.db import Database
    from practice.core.dedupe import Dedupe
    from practice.core.identity import Principal
    from practice.reporting.digest import JOB, DigestService, render_html

    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "select org_id from org_members where user_id = %s and deleted_at is null limit 1",
            [user],
        ).fetchone()
    if row is None:
        raise LookupError(f"no member {user}")
    db = Database(Settings(database_url=app_url, db_pool_min=0, db_pool_max=1))
    db.open()
    try:
        service = DigestService(db, Dedupe(db, 1), send=lambda _digest: "")
        principal = Principal.system(JOB, row[0])
        managers = [m for m in service.managers(principal, only=user) if m["team"]]
        if not managers:
            raise LookupError(f"{user} manages no team")
        digest = service.build(principal, managers[0], datetime.now(UTC).date())
    finally:
        db.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(digest))
    return out

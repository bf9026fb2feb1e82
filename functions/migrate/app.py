"""The deploy's schema migration: a CloudFormation custom resource (template.yaml
``SchemaMigration``) whose handler runs ``sql/migrations`` as the schema owner
(``practice.deploy.schema``) and answers CloudFormation (``practice.deploy.custom_resource``).

The build (functions/migrate/Makefile) ships the migrations beside this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from practice.core.config import get_settings
from practice.core.runtime import entry_point
from practice.deploy.custom_resource import run
from practice.deploy.schema import from_settings

settings = get_settings()
_shipped = Path(__file__).resolve().parent / "sql" / "migrations"
migration = from_settings(settings, _shipped if _shipped.is_dir() else None)


@entry_point(budget_seconds=590, correlation_id=lambda event: event.get("RequestId"))
def handler(event: dict[str, Any], _context: Any) -> dict[str, str]:
    return run(event, migration)

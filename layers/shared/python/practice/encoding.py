"""Database rows as JSON-ready dicts, cheaply.

FastAPI's ``jsonable_encoder`` walks every nested value (a large ``answers``
document costs a quarter of a millisecond); values from ``jsonb`` columns are
already JSON-native, so only the row's own columns need converting.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID


def json_value(value: Any) -> Any:
    """One column value as a JSON-native value."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with each column converted by ``json_value``."""
    return {name: json_value(value) for name, value in row.items()}

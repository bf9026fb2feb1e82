"""Keyset cursors: a page ends at a row's (instant, id), and the next page starts
strictly after it in the list's order. The cursor is that pair, opaque to the
client (URL-safe base64 of JSON), so a page never shifts when rows are added
before it, as an offset would."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from practice.core.errors import Invalid

# Cursors travel in a query string: short, URL-safe, no padding.
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,200}$"


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page ended: the last row's instant and id."""

    at: datetime
    id: UUID

    def encode(self) -> str:
        """The opaque cursor of this position."""
        raw = json.dumps([self.at.isoformat(), str(self.id)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, field: str = "query.cursor") -> Keyset | None:
    """The position a cursor names (None for none); ``Invalid`` when it names none."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, id_ = json.loads(raw)
        position = Keyset(datetime.fromisoformat(at), UUID(id_))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Invalid("the cursor is not one this list gave", field=field) from exc
    if position.at.tzinfo is None:
        raise Invalid("the cursor is not one this list gave", field=field)
    return position


def next_cursor(rows: list[Keyset], limit: int) -> str | None:
    """The cursor after a full page (``limit`` rows), else None: the list ended."""
    return rows[-1].encode() if rows and len(rows) >= limit else None

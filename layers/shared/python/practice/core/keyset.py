"""Keyset cursors: a page ends at its last row's position in the list's order
(the figure the list sorts by, then the id), and the next page starts strictly
after it, so a page never shifts when rows are added before it, as an offset
would.

A cursor is that position as text, ``<figure>~<id>``: an instant as epoch
microseconds, or a decimal figure (a count, a rating). Its whole form is in
its pattern, so every cursor the contract allows names a position, and none
is refused once it matches (a forged one only starts the page elsewhere; row-
level security and the org filter still decide what any page holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Epoch microseconds: 17 digits reach past year 5000 either way.
INSTANT_CURSOR = f"^-?[0-9]{{1,17}}~{_UUID}$"
NUMBER_CURSOR = f"^-?[0-9]{{1,20}}(\\.[0-9]{{1,12}})?~{_UUID}$"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def instant_cursor(at: datetime, id_: UUID) -> str:
    """The cursor after a row at instant ``at``."""
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}~{id_}"


def number_cursor(value: Decimal | float | int, id_: UUID) -> str:
    """The cursor after a row whose figure is ``value``."""
    return f"{Decimal(str(value)).normalize():f}~{id_}"


def read_instant(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The position an ``INSTANT_CURSOR`` names (instants beyond the calendar clamp)."""
    if cursor is None:
        return None
    micros, id_ = cursor.split("~")
    try:
        at = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        at = _EARLIEST if micros.startswith("-") else _LATEST
    return at, UUID(id_)


def read_number(cursor: str | None) -> tuple[Decimal, UUID] | None:
    """The position a ``NUMBER_CURSOR`` names."""
    if cursor is None:
        return None
    value, id_ = cursor.split("~")
    return Decimal(value), UUID(id_)


def next_cursor(cursors: Sequence[str], limit: int) -> str | None:
    """The last row's cursor after a full page (``limit`` rows), else None: the end."""
    return cursors[-1] if cursors and len(cursors) >= limit else None

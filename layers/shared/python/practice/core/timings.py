"""Per-statement timings kept in the container: what the query report shows
where ``pg_stat_statements`` is absent.

The hook runs on every ``Database.query``, so it is kept to a few operations:
one dict lookup, three additions and one slot of a ring of recent durations
(``bench`` and tests/unit/test_timings.py measure it). Figures are kept per org
(a container serves many; one admin sees only their own org's), for a bounded
number of (org, statement) pairs.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

# Recent durations kept per statement for its p95 (older ones are overwritten).
SAMPLES = 64
# (org, statement) pairs tracked at most: past it, new pairs are not recorded.
MAX_KEYS = 4096


class _Entry:
    __slots__ = ("calls", "recent", "rows", "total")

    def __init__(self) -> None:
        self.calls = 0
        self.total = 0.0
        self.rows = 0
        self.recent = [0.0] * SAMPLES


class StatementTimings:
    """Calls, total time, rows and recent durations of each statement, by org."""

    def __init__(self) -> None:
        self._entries: dict[tuple[UUID | None, str], _Entry] = {}

    def record(self, org_id: UUID | None, sql: str, seconds: float, rows: int) -> None:
        """Count one run of ``sql`` for ``org_id`` (None: no principal)."""
        entry = self._entries.get((org_id, sql))
        if entry is None:
            if len(self._entries) >= MAX_KEYS:
                return
            entry = self._entries[org_id, sql] = _Entry()
        entry.recent[entry.calls % SAMPLES] = seconds
        entry.calls += 1
        entry.total += seconds
        entry.rows += rows

    def figures(self, org_id: UUID | None) -> list[dict[str, Any]]:
        """Each statement the org ran: calls, mean and p95 ms (of the recent
        runs), rows; the costliest in total first."""
        out = []
        for (org, sql), entry in list(self._entries.items()):
            if org != org_id or entry.calls == 0:
                continue
            recent = sorted(entry.recent[: min(entry.calls, SAMPLES)])
            p95 = recent[max(0, math.ceil(0.95 * len(recent)) - 1)]
            out.append(
                {
                    "statement": sql,
                    "calls": entry.calls,
                    "total_ms": entry.total * 1000,
                    "mean_ms": entry.total * 1000 / entry.calls,
                    "p95_ms": p95 * 1000,
                    "rows": entry.rows,
                    "plans": None,
                }
            )
        return sorted(out, key=lambda f: f["total_ms"], reverse=True)

    def clear(self) -> None:
        """Forget every figure (tests)."""
        self._entries.clear()

"""Per-container TTL cache with stats and tag invalidation.

Every key starts with the org id, passed separately from the rest of the key,
so no code path can build a key that lets one tenant read another's entry.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cachetools import TLRUCache

MISSING: Any = object()


@dataclass(slots=True)
class _Entry:
    value: Any
    expires_at: float
    tags: frozenset[Hashable]


class TenantCache:
    """An LRU cache whose entries expire after their own TTL and carry tags."""

    def __init__(self, maxsize: int = 10_000, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._entries: TLRUCache = TLRUCache(
            maxsize=maxsize, ttu=lambda _key, entry, _now: entry.expires_at, timer=timer
        )
        self._by_tag: defaultdict[Hashable, set[tuple]] = defaultdict(set)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._org_hits: Counter[UUID] = Counter()
        self._org_misses: Counter[UUID] = Counter()

    @staticmethod
    def _key(org_id: UUID, key: tuple) -> tuple:
        if not isinstance(org_id, UUID):
            raise TypeError("cache keys need the org id as a UUID")
        return (org_id, *key)

    def get(self, org_id: UUID, key: tuple) -> Any:
        """The cached value, or ``MISSING``."""
        full = self._key(org_id, key)
        with self._lock:
            entry = self._entries.get(full)
            if entry is None:
                self.misses += 1
                self._org_misses[org_id] += 1
                return MISSING
            self.hits += 1
            self._org_hits[org_id] += 1
            return entry.value

    def set(
        self, org_id: UUID, key: tuple, value: Any, ttl: float, tags: Iterable[Hashable] = ()
    ) -> None:
        """Store ``value`` for ``ttl`` seconds under the org, tagged for invalidation."""
        full = self._key(org_id, key)
        scoped_tags = frozenset((org_id, tag) for tag in tags)
        with self._lock:
            self._entries[full] = _Entry(value, self._timer() + ttl, scoped_tags)
            for tag in scoped_tags:
                self._by_tag[tag].add(full)
            if len(self._by_tag) > 2 * self._entries.maxsize:
                self._prune_tags()

    def _prune_tags(self) -> None:
        # Expired and evicted entries leave their keys in the tag index; drop them
        # so a long-lived container's index stays bounded by the cache size.
        self._entries.expire()
        for tag in list(self._by_tag):
            live = {k for k in self._by_tag[tag] if k in self._entries}
            if live:
                self._by_tag[tag] = live
            else:
                del self._by_tag[tag]

    def invalidate(self, org_id: UUID, key: tuple) -> None:
        """Drop one entry."""
        with self._lock:
            self._entries.pop(self._key(org_id, key), None)

    def invalidate_tag(self, org_id: UUID, tag: Hashable) -> int:
        """Drop every entry of the org carrying ``tag``; returns how many were dropped."""
        with self._lock:
            keys = self._by_tag.pop((org_id, tag), set())
            return sum(self._entries.pop(k, None) is not None for k in keys)

    def clear(self) -> int:
        """Drop everything; returns how many entries there were."""
        with self._lock:
            size = len(self._entries)
            self._entries.clear()
            self._by_tag.clear()
            return size

    def clear_org(self, org_id: UUID) -> int:
        """Drop every entry of one org; returns how many there were."""
        with self._lock:
            keys = [key for key in self._entries if key[0] == org_id]
            for key in keys:
                del self._entries[key]
            for tag in [tag for tag in self._by_tag if tag[0] == org_id]:
                del self._by_tag[tag]
            return len(keys)

    def stats(self, org_id: UUID | None = None) -> dict[str, Any]:
        """Size, hits, misses and hit rate since the container started: of one org
        when ``org_id`` is given (what a tenant's admin may see), else of all."""
        with self._lock:
            self._entries.expire()
            if org_id is None:
                size, hits, misses = len(self._entries), self.hits, self.misses
            else:
                size = sum(1 for key in self._entries if key[0] == org_id)
                hits, misses = self._org_hits[org_id], self._org_misses[org_id]
            total = hits + misses
            return {
                "size": size,
                "max_size": self._entries.maxsize,
                "hits": hits,
                "misses": misses,
                "hit_rate": round(hits / total, 4) if total else 0.0,
            }

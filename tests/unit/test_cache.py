"""The per-container cache: TTLs, tags, stats, and org-scoped keys."""

from uuid import uuid4

import pytest

from practice.core.cache import MISSING, TenantCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_entries_expire_after_their_own_ttl(clock: FakeClock) -> None:
    cache = TenantCache(timer=clock)
    org = uuid4()
    cache.set(org, ("state", 1), "short", ttl=30)
    cache.set(org, ("info", 1), "long", ttl=300)
    clock.now += 29.9
    assert cache.get(org, ("state", 1)) == "short"
    clock.now += 0.2
    assert cache.get(org, ("state", 1)) is MISSING
    assert cache.get(org, ("info", 1)) == "long"
    clock.now += 300
    assert cache.get(org, ("info", 1)) is MISSING


def test_one_org_never_reads_another_orgs_entry(clock: FakeClock) -> None:
    cache = TenantCache(timer=clock)
    org_a, org_b = uuid4(), uuid4()
    cache.set(org_a, ("state", "same-id"), "a's", ttl=30)
    assert cache.get(org_b, ("state", "same-id")) is MISSING
    assert cache.get(org_a, ("state", "same-id")) == "a's"


def test_keys_must_carry_an_org_uuid() -> None:
    cache = TenantCache()
    with pytest.raises(TypeError):
        cache.set("org_a", ("state", 1), "x", ttl=1)  # type: ignore[arg-type]


def test_tag_invalidation_is_scoped_to_the_org(clock: FakeClock) -> None:
    cache = TenantCache(timer=clock)
    org_a, org_b = uuid4(), uuid4()
    cache.set(org_a, ("state", 1), 1, ttl=30, tags=["attempt:1"])
    cache.set(org_a, ("info", 1), 2, ttl=30, tags=["attempt:1"])
    cache.set(org_a, ("state", 2), 3, ttl=30, tags=["attempt:2"])
    cache.set(org_b, ("state", 1), 4, ttl=30, tags=["attempt:1"])
    assert cache.invalidate_tag(org_a, "attempt:1") == 2
    assert cache.get(org_a, ("state", 1)) is MISSING
    assert cache.get(org_a, ("info", 1)) is MISSING
    assert cache.get(org_a, ("state", 2)) == 3
    assert cache.get(org_b, ("state", 1)) == 4


def test_stats_count_hits_misses_and_size(clock: FakeClock) -> None:
    cache = TenantCache(timer=clock)
    org = uuid4()
    cache.set(org, ("k",), "v", ttl=10)
    cache.get(org, ("k",))
    cache.get(org, ("k",))
    cache.get(org, ("other",))
    stats = cache.stats()
    assert (stats["size"], stats["hits"], stats["misses"]) == (1, 2, 1)
    assert stats["hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    clock.now += 11
    assert cache.stats()["size"] == 0
    assert cache.clear() == 0


def test_size_is_bounded_and_the_tag_index_with_it(clock: FakeClock) -> None:
    cache = TenantCache(maxsize=10, timer=clock)
    org = uuid4()
    for i in range(100):
        cache.set(org, ("state", i), i, ttl=30, tags=[f"attempt:{i}"])
    assert cache.stats()["size"] == 10
    assert len(cache._by_tag) <= 20


def test_clearing_and_stats_can_be_scoped_to_one_org(clock: FakeClock) -> None:
    cache = TenantCache(timer=clock)
    org_a, org_b = uuid4(), uuid4()
    cache.set(org_a, ("state", 1), 1, ttl=30, tags=["attempt:1"])
    cache.set(org_a, ("state", 2), 2, ttl=30)
    cache.set(org_b, ("state", 1), 3, ttl=30, tags=["attempt:1"])
    cache.get(org_b, ("state", 1))
    cache.get(org_a, ("missing",))
    assert cache.stats(org_b) | {"max_size": 0} == {
        "size": 1,
        "max_size": 0,
        "hits": 1,
        "misses": 0,
        "hit_rate": 1.0,
    }
    assert cache.clear_org(org_a) == 2
    assert cache.get(org_a, ("state", 1)) is MISSING
    assert cache.get(org_b, ("state", 1)) == 3
    assert cache.invalidate_tag(org_b, "attempt:1") == 1

"""Settings: the DSN is built safely from parts; a full URL wins."""

import psycopg

from practice.config import Settings


def test_password_with_reserved_characters_survives(monkeypatch) -> None:
    monkeypatch.delenv("PRACTICE_DATABASE_URL", raising=False)
    settings = Settings(db_host="db.internal", db_password="p:a/s@s w'o\\rd", db_name="practice")
    parsed = psycopg.conninfo.conninfo_to_dict(settings.conninfo())
    assert parsed["password"] == "p:a/s@s w'o\\rd"
    assert parsed["host"] == "db.internal"
    assert parsed["user"] == "practice_lambda"


def test_full_url_wins(monkeypatch) -> None:
    monkeypatch.setenv("PRACTICE_DATABASE_URL", "postgresql://u@h:1/d")
    assert Settings().conninfo() == "postgresql://u@h:1/d"


def test_seed_004_numbers_are_the_defaults(monkeypatch) -> None:
    for name in ("CACHE_TTL_STATE", "BREAKER_FAILURE_THRESHOLD", "DB_RETRY_ATTEMPTS"):
        monkeypatch.delenv(f"PRACTICE_{name}", raising=False)
    settings = Settings()
    assert (settings.cache_ttl_state, settings.cache_ttl_info) == (30, 300)
    assert (settings.cache_ttl_stats, settings.cache_ttl_batch) == (120, 60)
    assert (settings.breaker_failure_threshold, settings.breaker_open_seconds) == (5, 60)
    assert settings.db_retry_attempts == 3
    assert settings.db_prepare_threshold is None
    assert settings.db_pool_max <= 2

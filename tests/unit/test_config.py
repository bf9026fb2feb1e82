"""Settings: the DSN is built safely from parts; a full URL wins."""

import psycopg

from practice.core.config import Settings


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


def test_seed_004_numbers_are_the_defaults_where_we_keep_them(monkeypatch) -> None:
    for name in ("CACHE_TTL_INFO", "BREAKER_FAILURE_THRESHOLD", "DB_RETRY_ATTEMPTS"):
        monkeypatch.delenv(f"PRACTICE_{name}", raising=False)
    settings = Settings()
    assert (settings.cache_ttl_info, settings.cache_ttl_stats) == (300, 120)
    # States carry versions, and a batch returns states and write verdicts: never cached.
    assert not hasattr(settings, "cache_ttl_state")
    assert not hasattr(settings, "cache_ttl_batch")
    assert settings.breaker_failure_threshold == 5
    # A 60 s window would outlast the database's return; ours grows to 4 s.
    assert (settings.breaker_first_open_seconds, settings.breaker_open_seconds) == (1, 4)
    assert settings.db_retry_attempts == 3
    assert settings.db_prepare_threshold is None
    assert settings.db_pool_max <= 2


def test_reads_go_to_the_read_endpoint_when_one_is_set_and_to_the_one_database_otherwise(
    monkeypatch,
) -> None:
    for name in ("PRACTICE_DATABASE_URL", "PRACTICE_READ_DATABASE_URL", "PRACTICE_DB_READ_HOST"):
        monkeypatch.delenv(name, raising=False)
    plain = Settings(db_host="proxy.example")
    assert plain.for_reads() is plain
    assert Settings(db_host="proxy.example", db_read_host="").for_reads() == plain

    split = Settings(db_host="proxy.example", db_read_host="proxy-read.example")
    reads = split.for_reads()
    assert "host=proxy-read.example" in reads.conninfo()
    assert (reads.db_user, reads.db_pool_max) == (split.db_user, split.db_pool_max)
    assert "host=proxy.example" in split.conninfo()  # the writer's settings are untouched

    local = Settings(database_url="postgresql:///writer", read_database_url="postgresql:///reader")
    assert local.for_reads().conninfo() == "postgresql:///reader"
    # A full URL wins over the parts: a read host alone does not move it.
    assert Settings(database_url="postgresql:///w", db_read_host="r").for_reads().conninfo() == (
        "postgresql:///w"
    )

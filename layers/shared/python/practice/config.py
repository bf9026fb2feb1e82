"""Settings from the environment (prefix ``PRACTICE_``), with the database secret
read through Powertools Parameters when a secret ARN is configured."""

from __future__ import annotations

import json
from functools import lru_cache

from psycopg.conninfo import make_conninfo
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the backend; names map to ``PRACTICE_<NAME>`` variables."""

    model_config = SettingsConfigDict(env_prefix="PRACTICE_", extra="ignore")

    # Database. A full URL wins (local stack, tests); otherwise the DSN is built
    # from the parts, with the password from the secret when one is configured.
    database_url: SecretStr | None = None
    db_host: str = "localhost"
    db_port: int = 5432
    db_name: str = "practice"
    db_user: str = "practice_lambda"
    db_password: SecretStr | None = None
    db_secret_arn: str | None = None
    db_secret_max_age: int = 300
    db_sslmode: str = "prefer"
    db_connect_timeout: int = 2
    db_statement_timeout_ms: int = 10_000
    # Lambda serves one request at a time per container: one connection, a
    # spare for the rare nested use. Idle and lifetime stay under the usual
    # proxy idle timeouts (RDS Proxy 30 min, PgBouncer server_idle_timeout 10 min).
    db_pool_min: int = 1
    db_pool_max: int = 2
    db_pool_timeout: float = 2.0
    db_max_idle: float = 300.0
    db_max_lifetime: float = 540.0
    # Prepared statements break behind RDS Proxy / PgBouncer in transaction mode.
    db_prepare_threshold: int | None = None
    db_retry_attempts: int = 3
    # Seed 004 opens the breaker for 60 s; a window that long outlasts the
    # database's return by a minute. Ours starts at 1 s and doubles while probes
    # fail, up to 4 s, so a container serves again within seconds.
    breaker_failure_threshold: int = 5
    breaker_first_open_seconds: float = 1.0
    breaker_open_seconds: float = 4.0
    # What a request may spend waiting on the database (pool, retries,
    # statements), within the function's timeout less a margin.
    request_budget_seconds: float = 6.0

    # Per-container cache, TTLs in seconds (seed 004's numbers). Attempt state is
    # never cached: it carries the version a client saves against.
    cache_max_entries: int = 10_000
    cache_ttl_info: float = 300.0
    cache_ttl_stats: float = 120.0
    cache_ttl_batch: float = 60.0
    # Principals (Clerk org → our org, stored role): short, so a removed member
    # or a demotion reaches every warm container within a minute.
    cache_ttl_org: float = 60.0

    # HTTP
    max_body_bytes: int = 256 * 1024
    api_base_path: str = ""
    authorized_parties: list[str] = Field(default_factory=list)

    # Storage
    uploads_bucket: str = "practice-local-uploads"
    s3_endpoint_url: str | None = None
    recording_max_bytes: int = 200 * 1024 * 1024
    recording_content_types: list[str] = Field(
        default_factory=lambda: ["audio/mpeg", "audio/wav", "audio/webm", "audio/ogg", "audio/mp4"]
    )
    upload_url_expiry_seconds: int = 900

    def conninfo(self) -> str:
        """The libpq connection string, escaped so any password character works."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        params: dict[str, object] = {
            "host": self.db_host,
            "port": self.db_port,
            "dbname": self.db_name,
            "user": self.db_user,
            "sslmode": self.db_sslmode,
            "connect_timeout": self.db_connect_timeout,
            "application_name": "practice",
        }
        if self.db_secret_arn:
            params.update(_secret_params(self.db_secret_arn, self.db_secret_max_age))
        elif self.db_password is not None:
            params["password"] = self.db_password.get_secret_value()
        return make_conninfo("", **params)


def _secret_params(secret_arn: str, max_age: int) -> dict[str, object]:
    """Connection parameters from an RDS-style JSON secret, cached for ``max_age`` s."""
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(secret_arn, max_age=max_age)
    secret = json.loads(raw) if isinstance(raw, str) else raw
    mapping = {"username": "user", "password": "password", "host": "host", "port": "port"}
    params = {ours: secret[theirs] for theirs, ours in mapping.items() if secret.get(theirs)}
    if secret.get("dbname"):
        params["dbname"] = secret["dbname"]
    return params


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once per container."""
    return Settings()

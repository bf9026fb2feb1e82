"""Settings from the environment (prefix ``PRACTICE_``), with the database login
read through Powertools Parameters, per new connection, when a secret ARN is
configured."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Literal

from psycopg.conninfo import make_conninfo
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)


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
    # A breaker open for a fixed 60 s outlasts the database's return by a
    # minute. Ours starts at 1 s and doubles while probes fail, up to 4 s, so a
    # container serves again within seconds.
    breaker_failure_threshold: int = 5
    breaker_first_open_seconds: float = 1.0
    breaker_open_seconds: float = 4.0
    # What a request may spend waiting on the database (pool, retries,
    # statements), within the function's timeout less a margin.
    request_budget_seconds: float = 6.0

    # Per-container cache, TTLs in seconds. Attempt state is never cached: it
    # carries the version a client saves against. Nor is what a batch returns:
    # states and write verdicts.
    cache_max_entries: int = 10_000
    cache_ttl_info: float = 300.0
    cache_ttl_stats: float = 120.0
    # Principals (Clerk org → our org, stored role): short, so a removed member
    # or a demotion reaches every warm container within a minute.
    cache_ttl_org: float = 60.0

    # The optimization report may show database-wide figures (pg_stat_statements,
    # the tables' scan counters), which include every org's traffic: for a
    # deployment whose database serves one tenant, or its operators only.
    query_report_database_wide: bool = False

    # HTTP
    max_body_bytes: int = 256 * 1024
    api_base_path: str = ""
    authorized_parties: list[str] = Field(default_factory=list)

    # Idempotency-Key records live this long (the IETF draft suggests at least 24 h).
    idempotency_ttl_seconds: int = Field(default=86_400, ge=1)

    # Storage
    uploads_bucket: str = "practice-local-uploads"
    s3_endpoint_url: str | None = None
    upload_url_expiry_seconds: int = 900

    # Reads that may lag the writer by a moment (reports, exports): a read-only
    # endpoint, the Aurora reader behind RDS Proxy's read-only endpoint in AWS.
    # A full URL wins (local stack, tests); unset, reads go to the one database.
    read_database_url: SecretStr | None = None
    db_read_host: str = ""

    # The deploy's migration (functions/migrate), as the schema owner, never the
    # functions' login: a full URL wins (tests); else the owner's secret (RDS JSON
    # shape) gives the login, and owner_host (else the secret's host) the server.
    owner_database_url: SecretStr | None = None
    owner_secret_arn: str | None = None
    owner_host: str = ""
    # Exports (CSV files in the uploads bucket under exports/, written by the
    # exports worker from its queue). A download URL is minted per request and
    # lives briefly: one signed with a Lambda role's temporary credentials dies
    # with them anyway. Retention is the bucket's lifecycle rule (template:
    # ExportsRetentionDays); after it an export answers `expired`.
    exports_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    export_url_expiry_seconds: int = Field(default=900, ge=1, le=7 * 86_400)
    export_retention_days: int = Field(default=7, ge=1)
    export_max_span_days: int = Field(default=366, ge=1)
    # S3 multipart parts: at least 5 MiB (S3's floor for all but the last part).
    export_part_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    # A run's hold on its export, renewed at every part; a redelivered message
    # takes over a run whose lease ran out (its worker was killed).
    export_lease_seconds: int = Field(default=120, ge=10)
    export_statement_timeout_ms: int = Field(default=840_000, ge=1_000)
    # The worker stops (aborts the upload, fails the export) with this much of
    # the invocation left, so the failure is recorded before Lambda's timeout.
    export_stop_margin_seconds: float = Field(default=20.0, ge=0)
    # A message may arrive before its request commits: the worker waits this
    # long for the row before leaving the message to be delivered again.
    export_missing_row_wait_seconds: float = Field(default=5.0, ge=0)
    # The worker's whole budget: its function's timeout (900 s) less the margin.
    export_worker_budget_seconds: float = Field(default=890.0, gt=0)

    # Tracking: a member's attempt history and comparisons, cached per
    # container; dropped here as soon as an attempt of theirs ends or is scored
    # in this container.
    cache_ttl_tracking: float = 300.0

    # Webhooks (Clerk through Svix, Vapi). Secrets: a Secrets Manager JSON secret
    # {"clerk": "whsec_…", "clerk_previous": "whsec_…", "vapi": "…"} read through
    # Powertools Parameters (cached for its max age), or the variables below
    # locally. Two Clerk secrets are accepted at once, for a rotation.
    webhook_secrets_arn: str | None = None
    webhook_secrets_max_age: int = 300
    webhook_clerk_secret: SecretStr | None = None
    webhook_clerk_secret_previous: SecretStr | None = None
    webhook_vapi_secret: SecretStr | None = None
    # How Vapi authenticates: "secret" (the x-vapi-secret header) or "hmac"
    # (x-signature = hex HMAC-SHA256 of "{x-timestamp}.{body}").
    webhook_vapi_auth: Literal["secret", "hmac"] = "secret"
    # A signature's timestamp may be this far off, either way (Svix: 5 minutes).
    webhook_tolerance_seconds: int = 300
    # End-of-call reports carry the transcript and the message log.
    webhook_max_body_bytes: int = 1024 * 1024
    # The verification clock (epoch seconds) for local replays of the signed
    # sample events only; ignored inside a real Lambda.
    webhook_verify_at: int | None = None
    # Clerk role → member role; a role not listed (a custom one) gets the default.
    webhook_clerk_roles: dict[str, Literal["admin", "manager", "trainee"]] = Field(
        default_factory=lambda: {
            "org:admin": "admin",
            "org:manager": "manager",
            "org:member": "trainee",
        }
    )
    webhook_clerk_default_role: Literal["admin", "manager", "trainee"] = "trainee"
    # Retries of failed (and stuck) deliveries: backoff base * 2^(attempts-1),
    # capped, until this many attempts; then the event waits for an operator.
    webhook_retry_max_attempts: int = 8
    webhook_retry_base_seconds: int = 30
    webhook_retry_max_backoff_seconds: int = 3600
    webhook_retry_batch: int = 25
    webhook_stuck_seconds: int = 120
    # Reporting. Dashboards are cached per container for these seconds (the
    # overview 5 min, the leaderboard 15 min, scenario insights 1 h, the rest
    # a minute); a scenario whose scores' standard deviation reaches the
    # threshold is flagged as high variance (an unclear rubric). A refresh,
    # scheduled or asked for, may run statements this long (a full rebuild
    # over a million facts takes seconds).
    reports_ttl_overview: float = 300.0
    reports_ttl_leaderboard: float = 900.0
    reports_ttl_insights: float = 3600.0
    reports_ttl_default: float = 60.0
    reports_high_variance_stddev: float = 20.0
    refresh_statement_timeout_ms: int = 600_000
    # The weekly digest: the SES sender identity (verified), a local SES
    # endpoint (moto), and how long "sent this week" is remembered.
    digest_sender: str = "digest@practice.local"
    ses_endpoint_url: str | None = None
    digest_dedupe_ttl_seconds: int = Field(default=8 * 86_400, ge=7 * 86_400)

    def conninfo(self) -> str:
        """The libpq connection string, escaped so any password character works.

        With a secret configured it carries no password: ``secret_credentials``
        supplies the login per new connection, so a rotation reaches the pool
        without recycling the container."""
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
        if not self.db_secret_arn and self.db_password is not None:
            params["password"] = self.db_password.get_secret_value()
        return make_conninfo("", **params)

    def for_reads(self) -> Settings:
        """These settings pointed at the read endpoint when one is configured, else
        themselves: ``Database(settings.for_reads())`` is the reports' and exports'
        database, the same login, pool and breaker settings."""
        if self.read_database_url is not None:
            return self.model_copy(update={"database_url": self.read_database_url})
        if self.db_read_host and self.database_url is None:
            return self.model_copy(update={"db_host": self.db_read_host})
        return self

    @property
    def uses_secret(self) -> bool:
        """True when the login comes from Secrets Manager (no full URL given)."""
        return self.database_url is None and bool(self.db_secret_arn)

    def secret_credentials(self) -> dict[str, str]:
        """User and password from the RDS-style JSON secret, read through Powertools
        Parameters and cached for ``db_secret_max_age`` seconds, so each new
        connection sees a rotated password at most that late.

        Only the login is taken. The endpoint stays the configured one: an RDS
        secret names the instance, and its ``host``/``port``/``dbname`` would
        silently route the functions around RDS Proxy (or to another database).
        """
        if not self.db_secret_arn:
            return {}
        from aws_lambda_powertools.utilities import parameters

        raw = parameters.get_secret(self.db_secret_arn, max_age=self.db_secret_max_age)
        secret = json.loads(raw) if isinstance(raw, str | bytes) else raw
        if secret.get("host") and secret["host"] != self.db_host:
            _warn_once(
                f"the database secret names host {secret['host']!r}; connecting to the"
                f" configured {self.db_host!r} (only username and password are used)"
            )
        credentials = {"password": str(secret["password"])}
        if secret.get("username"):
            credentials["user"] = str(secret["username"])
        return credentials


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    # Every new connection reads the secret: one warning per container is enough.
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once per container."""
    return Settings()

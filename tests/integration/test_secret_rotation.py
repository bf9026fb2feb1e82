"""Database secret rotation: the pool reads the login from Secrets Manager (moto's
server, over HTTP) per new connection, honouring its max age, against a
PostgreSQL that really checks passwords (scram-sha-256), which the suite's
shared server, trusting localhost, does not."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import psycopg
import pytest
from aws_lambda_powertools.utilities import parameters
from moto.server import ThreadedMotoServer
from psycopg import sql

from dev.postgres import EmbeddedPostgres, free_port
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Unavailable
from practice.core.migrations import migrate

LOGIN = "rotating_login"
MAX_AGE = 1  # seconds: Powertools' max age has a one-second grain


@dataclass(frozen=True)
class PasswordServer:
    """A PostgreSQL where ``LOGIN`` must give its password; the superuser is trusted."""

    port: int
    admin_url: str


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordServer]:
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg-scram") / "data", free_port())
    embedded.init()
    # initdb trusts everyone; only the superuser keeps that, so the fixture can
    # rotate the login's password, while the login itself must authenticate.
    (embedded.datadir / "pg_hba.conf").write_text(
        "local all postgres trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    embedded.start()
    try:
        migrate(embedded.admin_url)  # every request begins with practice_enter()
        with psycopg.connect(embedded.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create role {} login password {} in role practice_app").format(
                    sql.Identifier(LOGIN), sql.Literal("first-password")
                )
            )
        yield PasswordServer(embedded.port, embedded.admin_url)
    finally:
        embedded.stop(mode="immediate")


@pytest.fixture(scope="module")
def secrets_url() -> Iterator[str]:
    """moto's server, for Secrets Manager over real HTTP."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def secrets(secrets_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A Secrets Manager client; Powertools' provider is rebuilt to reach the same server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
    parameters.clear_caches()
    yield boto3.client("secretsmanager", endpoint_url=secrets_url)
    parameters.clear_caches()


def _set_password(server: PasswordServer, password: str) -> None:
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter role {} password {}").format(
                sql.Identifier(LOGIN), sql.Literal(password)
            )
        )


def _rds_secret(password: str) -> str:
    # Shaped as RDS writes it, naming the instance rather than the proxy.
    return json.dumps(
        {
            "engine": "postgres",
            "username": LOGIN,
            "password": password,
            "host": "instance.abc123.eu-west-1.rds.amazonaws.com",
            "port": 1,
            "dbname": "not_this_one",
        }
    )


def _settings(server: PasswordServer, secret_arn: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": None,
        "db_host": "127.0.0.1",
        "db_port": server.port,
        "db_name": "postgres",
        "db_user": "not_the_secrets_user",
        "db_sslmode": "disable",
        "db_secret_arn": secret_arn,
        "db_secret_max_age": MAX_AGE,
        "db_pool_min": 1,
        "db_pool_max": 1,
        "db_pool_timeout": 1.0,
    }
    return Settings(**(values | overrides))


def test_a_rotated_password_reaches_new_connections_after_the_max_age(
    password_server: PasswordServer, secrets, caplog: pytest.LogCaptureFixture
) -> None:
    _set_password(password_server, "first-password")
    arn = secrets.create_secret(Name="db-rotation", SecretString=_rds_secret("first-password"))[
        "ARN"
    ]
    settings = _settings(password_server, arn)
    db = Database(settings)
    caplog.set_level(logging.WARNING, logger="practice.core.config")
    read_from = time.monotonic()
    db.open()
    db.pool.wait(timeout=5)
    read_by = time.monotonic()  # the secret was read in between: the cache expires after
    try:
        # The login comes from the secret; the endpoint stays the configured one
        # (the secret's host, port and dbname lead nowhere here).
        first = db.query(None, "select current_user as who, pg_backend_pid() as pid")[0]
        assert first["who"] == LOGIN
        assert "the database secret names host" in caplog.text

        _set_password(password_server, "second-password")
        secrets.put_secret_value(SecretId=arn, SecretString=_rds_secret("second-password"))

        # A connection already open stays open: the login was checked once.
        assert db.query(None, "select pg_backend_pid() as pid")[0]["pid"] == first["pid"]
        # Within the max age a new connection still logs in with the cached,
        # now rotated-away password: the secret is not read on every connect.
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(settings.conninfo(), **db.pool.kwargs()).close()
        assert time.monotonic() < read_from + MAX_AGE, "too slow to observe the cached secret"

        # Once the max age has passed (a deadline, not a wait for a condition),
        # the next new connection reads the secret again and logs in.
        time.sleep(max(0.0, read_by + MAX_AGE + 0.05 - time.monotonic()))
        db.pool.drain()
        after = db.query(None, "select current_user as who, pg_backend_pid() as pid")[0]
        assert after["who"] == LOGIN
        assert after["pid"] != first["pid"]
    finally:
        db.close()


def test_an_unreadable_secret_is_unavailable_not_a_crash(
    password_server: PasswordServer, secrets
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf"
    db = Database(_settings(password_server, missing, db_pool_timeout=0.3))
    db.open()
    try:
        with pytest.raises(Unavailable):
            db.query(None, "select 1")
    finally:
        db.close()


def test_a_multi_user_rotation_leaves_no_window_of_failed_logins(
    password_server: PasswordServer, secrets
) -> None:
    """The stack's login rotates with the multi-user scheme: the secret moves to a
    clone (a member of the login, so of practice_app) and the previous login keeps
    its password. Connections made from the cached secret keep working during the
    max age, and after it new ones log in as the clone."""
    _set_password(password_server, "first-password")
    clone = f"{LOGIN}_clone"
    with psycopg.connect(password_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(clone)))
        # What the rotation function does: the clone gets the current login's grants.
        conn.execute(
            sql.SQL("create role {} login password {} in role {}").format(
                sql.Identifier(clone), sql.Literal("clone-password"), sql.Identifier(LOGIN)
            )
        )
    arn = secrets.create_secret(
        Name="db-rotation-multi", SecretString=_rds_secret("first-password")
    )["ARN"]
    settings = _settings(password_server, arn)
    db = Database(settings)
    db.open()
    db.pool.wait(timeout=5)
    read_by = time.monotonic()
    try:
        assert db.query(None, "select current_user as who")[0]["who"] == LOGIN
        rotated = json.loads(_rds_secret("clone-password")) | {"username": clone}
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))

        # Within the max age: the cached (previous) login still logs in.
        psycopg.connect(settings.conninfo(), **db.pool.kwargs()).close()

        time.sleep(max(0.0, read_by + MAX_AGE + 0.05 - time.monotonic()))
        db.pool.drain()
        after = db.query(
            None,
            "select current_user as who,"
            " pg_has_role(current_user, 'practice_app', 'member') as app",
        )[0]
        assert after == {"who": clone, "app": True}
    finally:
        db.close()
        with psycopg.connect(password_server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(clone)))

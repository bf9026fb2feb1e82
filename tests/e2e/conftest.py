"""Fixtures for events fed through the functions' handlers: moto's S3 server
over real HTTP, the attempts function module, a caller that decodes responses,
and the local gateway serving every function over real HTTP."""

from __future__ import annotations

import base64
import importlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from dev import tokens
from dev.gateway import Gateway, GatewayServer, jwt_settings
from dev.invoke import LambdaContext
from dev.postgres import MigratedDatabase, free_port
from dev.template import load_template

UPLOADS_BUCKET = "practice-test-uploads"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server for S3 and SES, on a free localhost port."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=UPLOADS_BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="session")
def attempts_app(database: MigratedDatabase, moto_url: str) -> Iterator[ModuleType]:
    """`functions.attempts.app`, imported as Lambda would, against the test stack."""
    os.environ["PRACTICE_S3_ENDPOINT_URL"] = moto_url
    os.environ["PRACTICE_UPLOADS_BUCKET"] = UPLOADS_BUCKET
    from practice.core.config import get_settings

    get_settings.cache_clear()
    module = importlib.import_module("functions.attempts.app")
    yield module
    # Closed here, not left to the interpreter's exit: an open pool's threads
    # then each wait 5 s to be stopped.
    module.db.close()


@pytest.fixture(scope="session")
def batch_app(attempts_app: ModuleType) -> Iterator[ModuleType]:
    """`functions.batch.app`, imported as Lambda would, against the test stack."""
    module = importlib.import_module("functions.batch.app")
    yield module
    module.db.close()


@pytest.fixture(scope="session")
def exports_app(attempts_app: ModuleType) -> Iterator[ModuleType]:
    """`functions.exports.app`, imported as Lambda would, against the test stack."""
    module = importlib.import_module("functions.exports.app")
    yield module
    module.db.close()


@dataclass
class Reply:
    """A decoded payload-2.0 response."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def problem(self) -> dict[str, Any]:
        """The body, asserted to be a problem document."""
        assert self.headers.get("content-type") == "application/problem+json", self.headers
        return self.body


def call_handler(module: ModuleType, event: dict[str, Any]) -> Reply:
    """Feed ``event`` to the module's handler and decode what it answers."""
    response = module.handler(event, LambdaContext())
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    body = json.loads(raw) if raw and "json" in headers.get("content-type", "") else raw
    return Reply(response["statusCode"], headers, body)


@pytest.fixture
def call(attempts_app: ModuleType) -> Callable[[dict[str, Any]], Reply]:
    """Call the attempts handler with an event."""
    return lambda event: call_handler(attempts_app, event)


@pytest.fixture
def call_batch(batch_app: ModuleType) -> Callable[[dict[str, Any]], Reply]:
    """Call the batch handler with an event."""
    return lambda event: call_handler(batch_app, event)


@dataclass(frozen=True)
class Served:
    """The running gateway, its HTTP client and the key/issuer/audience it trusts."""

    url: str
    client: httpx.Client
    gateway: Gateway
    keys: tokens.KeyPair
    issuer: str
    audience: str

    def token(self, org: str, user: str, role: str, **claims: object) -> str:
        """A token for ``user`` signed by the gateway's key, claims overridable."""
        body = tokens.build_claims(
            org=org, user=user, role=role, issuer=self.issuer, audience=self.audience
        )
        body.update(claims)
        return tokens.sign(body, self.keys)


@pytest.fixture(scope="module")
def served(
    database: MigratedDatabase, moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The template's functions behind the local gateway on a free port, against
    the test database and moto's S3, trusting a key pair of this module's own."""
    template = load_template()
    keys = tokens.load_keys(Path(tmp_path_factory.mktemp("jwt")))
    exports_queue = boto3.client("sqs", endpoint_url=moto_url).create_queue(
        QueueName=f"served-exports-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]
    overrides = {
        "PRACTICE_DATABASE_URL": database.app_url,
        "PRACTICE_S3_ENDPOINT_URL": moto_url,
        "PRACTICE_UPLOADS_BUCKET": UPLOADS_BUCKET,
        "PRACTICE_SQS_ENDPOINT_URL": moto_url,
        "PRACTICE_EXPORTS_QUEUE_URL": exports_queue,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    gateway = Gateway.from_template(template, overrides=overrides, keys=keys, isolated=True)
    server = GatewayServer(gateway, "127.0.0.1", 0).start()
    issuer, audience = jwt_settings(template)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        try:
            yield Served(server.url, client, gateway, keys, issuer, audience)
        finally:
            server.stop()
            gateway.runtime.close()


@pytest.fixture(scope="session")
def webhooks_app(attempts_app: ModuleType) -> Iterator[ModuleType]:
    """`functions.webhooks.app` with the local stack's signing secrets."""
    from dev import signing
    from practice.core.config import get_settings

    os.environ.update(signing.ENVIRONMENT)
    get_settings.cache_clear()
    module = importlib.import_module("functions.webhooks.app")
    yield module
    module.db.close()


DIGEST_SENDER = "digest@practice.test"


@pytest.fixture(scope="session")
def reports_app(database: MigratedDatabase, moto_url: str) -> Iterator[ModuleType]:
    """`functions.reports.app`, imported as Lambda would, with SES at moto's server
    and a verified sender."""
    os.environ["PRACTICE_SES_ENDPOINT_URL"] = moto_url
    os.environ["PRACTICE_DIGEST_SENDER"] = DIGEST_SENDER
    boto3.client("ses", endpoint_url=moto_url).verify_email_identity(EmailAddress=DIGEST_SENDER)
    from practice.core.config import get_settings

    get_settings.cache_clear()
    module = importlib.import_module("functions.reports.app")
    yield module
    module.db.close()


@pytest.fixture(scope="session")
def webhook_retry_app(webhooks_app: ModuleType) -> Iterator[ModuleType]:
    """`functions.webhook_retry.app`, the retry schedule's function."""
    module = importlib.import_module("functions.webhook_retry.app")
    yield module
    module.db.close()


@pytest.fixture(scope="session")
def refresh_app(reports_app: ModuleType) -> Iterator[ModuleType]:
    """`functions.refresh.app`, imported as Lambda would, against the test stack."""
    module = importlib.import_module("functions.refresh.app")
    yield module
    module.db.close()

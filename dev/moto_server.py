"""S3 and SES for the laptop: moto's server in this process (a thread, so nothing
outlives us), the template's buckets created, and an SES identity verified for
the digest sender so sending mail succeeds."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from dev.invoke import LOCAL_UPLOADS_BUCKET, REGION, Resolver, Unresolvable

# Who the weekly digest comes from when the template names nobody.
DEFAULT_SENDER = "digest@practice.local"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Return once ``host:port`` accepts a TCP connection; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.01)


def aws_environment(endpoint: str) -> dict[str, str]:
    """Variables that send every AWS SDK call of a function to moto, with dummy credentials."""
    return {
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # botocore honours AWS_ENDPOINT_URL for every service: nothing reaches AWS.
        "AWS_ENDPOINT_URL": endpoint,
        "PRACTICE_S3_ENDPOINT_URL": endpoint,
    }


def forget_real_credentials() -> None:
    """Drop a session token or profile from the environment: real credentials must
    never reach moto's stand-ins (the dummy keys come with ``aws_environment``)."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)


def template_buckets(template: dict[str, Any] | None) -> list[str]:
    """Local names of the template's buckets, plus the config's default bucket."""
    names = list(Resolver(template).buckets.values()) if template else []
    return sorted({*names, LOCAL_UPLOADS_BUCKET})


def digest_senders(template: dict[str, Any] | None) -> list[str]:
    """E-mail addresses the template configures (parameter defaults, function
    variables), or the local default sender."""
    found: set[str] = set()
    if template:
        for spec in (template.get("Parameters") or {}).values():
            found.update(_EMAIL.findall(str((spec or {}).get("Default") or "")))
        resolver = Resolver(template)
        for resource in (template.get("Resources") or {}).values():
            props = (resource or {}).get("Properties") or {}
            variables = ((props.get("Environment") or {}).get("Variables")) or {}
            for value in variables.values():
                try:
                    found.update(_EMAIL.findall(resolver.text(value)))
                except (Unresolvable, LookupError, TypeError, ValueError):
                    continue
    return sorted(found) or [DEFAULT_SENDER]


def _bucket_cors(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    # Browsers upload with presigned POSTs: give the local bucket the template's CORS.
    props = ((template.get("Resources") or {}).get(logical_id) or {}).get("Properties") or {}
    rules = (props.get("CorsConfiguration") or {}).get("CorsRules") or []
    try:
        rules = Resolver(template).resolve(rules)
    except Unresolvable:
        return []
    renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return [{renamed.get(k, k): v for k, v in rule.items() if k != "Id"} for rule in rules]


@dataclass
class LocalAws:
    """A running moto server and what was created in it."""

    server: Any
    endpoint: str
    buckets: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server thread and release its port."""
        self.server.stop()


def start_moto(template: dict[str, Any] | None = None, host: str = "127.0.0.1") -> LocalAws:
    """Start moto on a free port, create the template's buckets, verify the senders."""
    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO unless told otherwise.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    bound_host, port = server.get_host_and_port()
    endpoint = f"http://{bound_host}:{port}"
    wait_for_port(bound_host, port)
    try:
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        s3 = session.client("s3", endpoint_url=endpoint)
        buckets = template_buckets(template)
        logical = {v: k for k, v in Resolver(template).buckets.items()} if template else {}
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
            rules = _bucket_cors(template, logical[bucket]) if bucket in logical else []
            if rules:
                s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        ses = session.client("ses", endpoint_url=endpoint)
        senders = digest_senders(template)
        for sender in senders:
            ses.verify_email_identity(EmailAddress=sender)
    except BaseException:
        server.stop()
        raise
    return LocalAws(server, endpoint, buckets, senders)

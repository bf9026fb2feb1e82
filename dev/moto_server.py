"""S3 and SES for the laptop: moto's server in this process (a thread, so nothing
outlives us), the template's buckets created with their CORS rules, and an SES
identity verified for each sender the template names, so sending mail succeeds."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from dev.template import REGION, Resolver, Unresolvable, resources

# practice.core.config's default bucket: functions without the variable use it.
LOCAL_UPLOADS_BUCKET = "practice-local-uploads"
DEFAULT_SENDER = "digest@practice.local"  # when the template names no sender
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def aws_environment(endpoint: str | None) -> dict[str, str]:
    """Variables that send every AWS SDK call of a function to moto (or nowhere,
    without an endpoint), with dummy credentials; real ones are dropped from ours."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)  # real credentials must never reach the stand-ins
    env = {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    if endpoint:
        # botocore honours AWS_ENDPOINT_URL for every service: nothing reaches AWS.
        env |= {"AWS_ENDPOINT_URL": endpoint, "PRACTICE_S3_ENDPOINT_URL": endpoint}
    return env


def senders(template: dict[str, Any]) -> list[str]:
    """E-mail addresses in the template's parameter defaults and function
    variables, or the local default sender."""
    resolver = Resolver(template)
    texts = [str(spec.get("Default") or "") for spec in (template.get("Parameters") or {}).values()]
    for props in resources(template, "AWS::Serverless::Function").values():
        texts += resolver.environment(
            (props.get("Environment") or {}).get("Variables") or {}
        ).values()
    return sorted({email for text in texts for email in _EMAIL.findall(text)}) or [DEFAULT_SENDER]


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


def start_moto(template: dict[str, Any], host: str = "127.0.0.1") -> LocalAws:
    """Start moto on a free port, create the template's buckets, verify the senders."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # it logs every request
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()  # returns once the server listens
    bound_host, port = server.get_host_and_port()
    endpoint = f"http://{bound_host}:{port}"
    try:
        session = boto3.session.Session(**{k.lower(): v for k, v in DUMMY_CREDENTIALS.items()})
        s3 = session.client("s3", endpoint_url=endpoint, region_name=REGION)
        resolver = Resolver(template)
        buckets = {LOCAL_UPLOADS_BUCKET: {}}
        for logical_id, props in resources(template, "AWS::S3::Bucket").items():
            buckets[resolver.buckets[logical_id]] = props
        for bucket, props in buckets.items():
            s3.create_bucket(Bucket=bucket)
            # Browsers upload with presigned POSTs: give the bucket the template's CORS.
            try:
                rules = resolver.resolve((props.get("CorsConfiguration") or {}).get("CorsRules"))
            except Unresolvable:
                rules = None
            renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
            rules = [{renamed.get(k, k): v for k, v in r.items() if k != "Id"} for r in rules or []]
            if rules:
                s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        ses = session.client("ses", endpoint_url=endpoint, region_name=REGION)
        verified = senders(template)
        for sender in verified:
            ses.verify_email_identity(EmailAddress=sender)
    except BaseException:
        server.stop()
        raise
    return LocalAws(server, endpoint, sorted(buckets), verified)

"""The S3 client, created on first use: most requests never touch S3, and
creating a boto3 client costs a cold start about a tenth of a second."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def s3_client(endpoint_url: str | None = None) -> Any:
    """A SigV4 S3 client; path-style addressing against a local endpoint (moto)."""
    import boto3
    from botocore.config import Config

    style = "path" if endpoint_url else "virtual"
    config = Config(signature_version="s3v4", s3={"addressing_style": style})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)

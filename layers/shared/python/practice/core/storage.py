"""The S3 client, created on first use: most requests never touch S3, and
creating a client costs a cold start about a tenth of a second."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def s3_client(endpoint_url: str | None = None) -> Any:
    """A SigV4 S3 client; path-style addressing against a local endpoint (moto).

    botocore's own session, not boto3's: boto3 adds nothing the functions use
    (its transfer manager, resources) and its S3 customizations import
    s3transfer and multiprocessing, about 2.5 MiB and a fifth of the client's
    creation time.

    Checksums stay botocore's defaults: every part carries a CRC32 that S3
    verifies. Over HTTPS (AWS) botocore then leaves the payload out of the
    signature (TLS and the checksum protect it); over plain HTTP it would hash
    every body with SHA-256 for the signature, a cost only a local endpoint
    (moto over ``http://``) pays, so there it is turned off too, and a local
    upload costs what the deployed one does.
    """
    import botocore.session
    from botocore.config import Config

    s3: dict[str, Any] = {"addressing_style": "path" if endpoint_url else "virtual"}
    if endpoint_url and endpoint_url.startswith("http://"):
        s3["payload_signing_enabled"] = False
    config = Config(signature_version="s3v4", s3=s3)
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, config=config
    )

"""What the S3 client puts on the wire for an export's part, over HTTPS (AWS)
and over plain HTTP (moto locally): a CRC32 S3 verifies on both, the payload
never hashed for the signature, and a part given as bytes streamed without a
copy. Requests are answered before they are sent (``before-send``): no socket."""

from __future__ import annotations

import base64
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from practice.core.storage import s3_client

pytestmark = pytest.mark.unit

PART = 8 * 1024 * 1024


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter([b""])


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def _client(endpoint_url: str | None) -> Any:
    """A fresh client: the cached one stays as the other tests use it."""
    return s3_client.__wrapped__(endpoint_url)


def _upload(client: Any, body: bytes | bytearray) -> dict[str, Any]:
    """Headers and streamed size of one ``UploadPart``."""
    seen: dict[str, Any] = {}

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen["headers"] = {k.lower(): v for k, v in request.headers.items()}
        data = request.body
        if hasattr(data, "read"):  # as the connection would: in blocks
            seen["sent"] = sum(len(block) for block in iter(lambda: data.read(65536), b""))
        else:
            seen["sent"] = len(data)
        return AWSResponse(request.url, 200, {"ETag": '"etag"'}, _Empty())

    client.meta.events.register("before-send.s3.UploadPart", answer)
    try:
        client.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=body)
    finally:
        client.meta.events.unregister("before-send.s3.UploadPart", answer)
    return seen


def _header(seen: dict[str, Any], name: str) -> str:
    value = seen["headers"].get(name)
    return value.decode() if isinstance(value, bytes) else value


def test_over_https_a_part_carries_a_crc32_trailer_and_its_payload_is_not_hashed() -> None:
    seen = _upload(_client(None), b"x" * 1000)
    assert _header(seen, "x-amz-trailer") == "x-amz-checksum-crc32"
    assert _header(seen, "x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert _header(seen, "x-amz-decoded-content-length") == "1000"


def test_over_plain_http_a_part_carries_its_crc32_and_is_not_hashed_either() -> None:
    body = b"x" * 1000
    seen = _upload(_client("http://127.0.0.1:9"), body)
    crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert _header(seen, "x-amz-checksum-crc32") == crc32
    assert _header(seen, "x-amz-content-sha256") == "UNSIGNED-PAYLOAD"


@pytest.mark.parametrize("endpoint_url", [None, "http://127.0.0.1:9"])
def test_a_part_given_as_bytes_is_streamed_without_a_copy(endpoint_url: str | None) -> None:
    client = _client(endpoint_url)
    _upload(client, b"warm")  # what the first call loads is not the part's

    def peak_while_sending(body: bytes | bytearray) -> int:
        tracemalloc.start()
        try:
            seen = _upload(client, body)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert seen["sent"] >= PART

    # As bytes (what the worker sends): a few blocks of it at a time, never all of it.
    assert peak_while_sending(bytes(PART)) < PART / 2
    if endpoint_url is None:
        # Why: a bytearray over HTTPS is copied whole into a BytesIO (one part more).
        assert peak_while_sending(bytearray(PART)) > PART

"""Signature checks over the raw body, before anything is parsed.

Clerk signs through Svix: ``svix-id``, ``svix-timestamp`` (seconds) and
``svix-signature`` (space-separated ``v1,<base64>`` entries, any of which may
match); the content is ``"{id}.{timestamp}.{body}"``, HMAC-SHA256 with the
base64-decoded secret after ``whsec_``. Vapi sends its shared secret in
``x-vapi-secret``, or an HMAC credential: ``x-signature`` (hex HMAC-SHA256 of
``"{x-timestamp}.{body}"``) and ``x-timestamp``.

A header that is there but cannot be read is ``Malformed`` (400); a missing
header, a wrong signature or a timestamp outside the tolerance is
``Unauthenticated`` (401). Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from practice.core.errors import Malformed, Unauthenticated

SVIX_PREFIX = "whsec_"
MAX_ID_LENGTH = 255


def svix_key(secret: str) -> bytes:
    """The HMAC key of a Svix secret (``whsec_<base64>``)."""
    raw = secret.removeprefix(SVIX_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Svix secret is whsec_ and base64") from exc


def _timestamp(value: str, name: str) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 16:
        raise Malformed(f"the {name} header is not a number of seconds", field=f"header.{name}")
    return int(text)


def _fresh(timestamp: int, now: float, tolerance: int) -> None:
    if abs(now - timestamp) > tolerance:
        raise Unauthenticated("the signature's timestamp is too old or too far ahead")


def verify_svix(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    now: float,
    tolerance: int,
) -> str:
    """The delivery id (``svix-id``) of a request signed with one of ``keys``."""
    msg_id = headers.get("svix-id")
    stamp = headers.get("svix-timestamp")
    signature = headers.get("svix-signature")
    if not msg_id or not stamp or not signature:
        raise Unauthenticated("the svix-id, svix-timestamp and svix-signature headers are required")
    if len(msg_id) > MAX_ID_LENGTH or not msg_id.isprintable():
        raise Malformed("the svix-id header is not a delivery id", field="header.svix-id")
    timestamp = _timestamp(stamp, "svix-timestamp")
    entries = [part.split(",", 1) for part in signature.split(" ") if part]
    if not entries or any(len(entry) != 2 for entry in entries):
        raise Malformed(
            "the svix-signature header is not a list of version,signature",
            field="header.svix-signature",
        )
    _fresh(timestamp, now, tolerance)
    content = f"{msg_id}.{stamp}.".encode() + body
    expected = [base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()) for key in keys]
    for version, given in entries:
        if version != "v1":
            continue
        candidate = given.encode()
        if any(hmac.compare_digest(candidate, mac) for mac in expected):
            return msg_id
    raise Unauthenticated("no signature matches")


def verify_vapi_secret(headers: Mapping[str, str], secret: str) -> None:
    """The shared secret in ``x-vapi-secret``."""
    given = headers.get("x-vapi-secret")
    if not given:
        raise Unauthenticated("the x-vapi-secret header is required")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthenticated("the secret does not match")


def verify_vapi_hmac(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: float, tolerance: int
) -> None:
    """``x-signature``: hex HMAC-SHA256 of ``"{x-timestamp}.{body}"``."""
    signature = headers.get("x-signature")
    stamp = headers.get("x-timestamp")
    if not signature or not stamp:
        raise Unauthenticated("the x-signature and x-timestamp headers are required")
    timestamp = _timestamp(stamp, "x-timestamp")
    given = signature.strip().removeprefix("sha256=").lower()
    if not given or any(c not in "0123456789abcdef" for c in given):
        raise Malformed("the x-signature header is not hex", field="header.x-signature")
    # Seconds, or milliseconds when it is that large.
    seconds = timestamp / 1000 if timestamp > 10**11 else timestamp
    _fresh(int(seconds), now, tolerance)
    content = f"{stamp.strip()}.".encode() + body
    expected = hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated("the signature does not match")

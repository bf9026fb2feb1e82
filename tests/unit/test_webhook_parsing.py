"""What the webhooks read from a delivery, without I/O: Svix signatures as the
svix package makes them, Vapi's HMAC, the report's mapping, Clerk's times."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from svix.webhooks import Webhook

from practice.core.errors import Malformed, Unauthenticated
from practice.webhooks import clerk, vapi
from practice.webhooks.signatures import svix_key, verify_svix, verify_vapi_hmac

SECRET = "whsec_" + base64.b64encode(b"unit-test-secret-0123456789").decode()
OTHER = "whsec_" + base64.b64encode(b"another-secret-0123456789ab").decode()
NOW = 1_800_000_000


def _svix(body: str, at: int = NOW, secret: str = SECRET) -> dict[str, str]:
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(at, UTC), body)
    return {"svix-id": "msg_1", "svix-timestamp": str(at), "svix-signature": signature}


def test_a_svix_signature_verifies_with_either_key_and_the_exact_bytes() -> None:
    body = '{"type":"user.updated"}'
    keys = [svix_key(OTHER), svix_key(SECRET)]
    assert verify_svix(_svix(body), body.encode(), keys, now=NOW, tolerance=300) == "msg_1"
    with pytest.raises(Unauthenticated):
        verify_svix(_svix(body), body.encode() + b" ", keys, now=NOW, tolerance=300)
    with pytest.raises(Unauthenticated):
        verify_svix(_svix(body), body.encode(), [svix_key(OTHER)], now=NOW, tolerance=300)
    for skew in (-301, 301):
        with pytest.raises(Unauthenticated):
            verify_svix(_svix(body, NOW + skew), body.encode(), keys, now=NOW, tolerance=300)
    with pytest.raises(Malformed):
        verify_svix(
            _svix(body) | {"svix-timestamp": "-1"}, body.encode(), keys, now=NOW, tolerance=300
        )


def test_our_signature_is_the_one_svix_verifies() -> None:
    body = '{"type":"organization.created"}'
    now = int(time.time())
    headers = _svix(body, now)
    verify_svix(headers, body.encode(), [svix_key(SECRET)], now=now, tolerance=300)
    Webhook(SECRET).verify(body, headers)  # and the package accepts it too


def test_vapi_hmac_over_timestamp_and_body() -> None:
    body = b'{"message":{"type":"hang"}}'
    mac = hmac.new(b"s3cret", f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    verify_vapi_hmac(
        {"x-signature": mac, "x-timestamp": str(NOW)}, body, "s3cret", now=NOW, tolerance=300
    )
    verify_vapi_hmac(
        {"x-signature": f"sha256={mac.upper()}", "x-timestamp": str(NOW)},
        body,
        "s3cret",
        now=NOW,
        tolerance=300,
    )
    with pytest.raises(Unauthenticated):
        verify_vapi_hmac(
            {"x-signature": mac, "x-timestamp": str(NOW + 1)},
            body,
            "s3cret",
            now=NOW,
            tolerance=300,
        )


def test_the_report_gives_duration_recordings_score_and_speaking_time() -> None:
    message = {
        "type": "end-of-call-report",
        "call": {"id": "call_1"},
        "startedAt": "2026-01-01T10:00:00.000Z",
        "endedAt": "2026-01-01T10:02:30.400Z",
        "artifact": {
            "transcript": "AI: hi",
            "messages": [
                {"role": "assistant", "time": 0, "endTime": 1000},
                {"role": "user", "duration": 400},
                {"role": "system", "message": "prompt"},
            ],
            "recording": {
                "stereoUrl": "s.wav",
                "mono": {"combinedUrl": "c.wav", "customerUrl": "u.wav"},
            },
        },
        "analysis": {"summary": "ok", "structuredData": {"rubric": 2}, "successEvaluation": "87"},
    }
    report = vapi.report_of(message, "call_1")
    assert report["duration_seconds"] == 150
    assert report["recording_urls"] == {
        "stereo": "s.wav",
        "mono_combinedUrl": "c.wav",
        "mono_customerUrl": "u.wav",
    }
    assert report["recording_url"] == "s.wav"
    assert report["score"] == 87
    assert report["kpis"] == {"talk_ms": 400, "listen_ms": 1000}
    assert report["score_breakdown"] == {"rubric": 2}
    assert vapi.score_of({"successEvaluation": "true"}) is None
    assert vapi.score_of({"structuredData": {"score": 130}}) is None


def test_vapi_delivery_keys() -> None:
    report = {"type": "end-of-call-report", "call": {"id": "c"}}
    status = {"type": "status-update", "status": "ended", "timestamp": 5, "call": {"id": "c"}}
    assert vapi.delivery_key(report) == ("c:end-of-call-report", "c")
    assert vapi.delivery_key(status) == ("c:status-update:ended:5", "c")
    with pytest.raises(Malformed):
        vapi.delivery_key({"type": "end-of-call-report", "call": {}})


def test_a_clerk_events_time_is_its_states_and_a_deletes_is_when_it_happened() -> None:
    updated = {"type": "user.updated", "timestamp": 900, "data": {"updated_at": 700}}
    deleted = {"type": "user.deleted", "timestamp": 900, "data": {"deleted": True}}
    assert clerk.event_time(updated) == 700
    assert clerk.event_time(deleted) == 900
    assert clerk.epoch_ms(True) is None
    assert clerk.epoch_ms(2**70) is None

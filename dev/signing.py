"""The local stack's webhook signing secrets (never used outside it), and a
signer for sample deliveries: the Svix package for Clerk (the provider's own
scheme, independent of the code under test) and an HMAC for Vapi."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

CLERK_SECRET = "whsec_bG9jYWwtY2xlcmstc2lnbmluZy1zZWNyZXQtMDE="  # noqa: S105 (local only)
CLERK_SECRET_PREVIOUS = "whsec_bG9jYWwtY2xlcmstc2lnbmluZy1zZWNyZXQtMDA="  # noqa: S105
VAPI_SECRET = "local-vapi-secret"  # noqa: S105 (local only)
VAPI_AUTH = "secret"

# The sample events in events/ are signed at this time (dev.events' fixed
# clock); `python -m dev invoke` verifies them at it (PRACTICE_WEBHOOK_VERIFY_AT).
SIGNED_AT = 1_790_000_000

# The settings that give a function these secrets.
ENVIRONMENT = {
    "PRACTICE_WEBHOOK_CLERK_SECRET": CLERK_SECRET,
    "PRACTICE_WEBHOOK_CLERK_SECRET_PREVIOUS": CLERK_SECRET_PREVIOUS,
    "PRACTICE_WEBHOOK_VAPI_SECRET": VAPI_SECRET,
    "PRACTICE_WEBHOOK_VAPI_AUTH": VAPI_AUTH,
}


def body_text(document: Any) -> str:
    """The exact body a delivery sends (what is signed)."""
    return json.dumps(document, separators=(",", ":"))


def clerk_headers(msg_id: str, body: str, at: int, secret: str = CLERK_SECRET) -> dict[str, str]:
    """Svix headers for ``body`` sent at ``at`` (epoch seconds)."""
    from svix.webhooks import Webhook

    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, UTC), body)
    return {"svix-id": msg_id, "svix-timestamp": str(at), "svix-signature": signature}


def vapi_hmac_headers(body: str, at: int, secret: str = VAPI_SECRET) -> dict[str, str]:
    """Vapi's HMAC credential for ``body`` at ``at`` (epoch seconds)."""
    mac = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return {"x-signature": mac, "x-timestamp": str(at)}


def vapi_secret_headers(secret: str = VAPI_SECRET) -> dict[str, str]:
    """Vapi's shared-secret header."""
    return {"x-vapi-secret": secret}


def send_clerk(url: str, user_id: str = "user_demo_trainee") -> str:
    """Send a signed ``user.updated`` for ``user_id`` to ``url``, now; its answer."""
    import time

    import httpx

    now = int(time.time())
    body = body_text(
        {
            "type": "user.updated",
            "object": "event",
            "timestamp": now * 1000,
            "data": {
                "id": user_id,
                "first_name": "Signed",
                "last_name": "Locally",
                "updated_at": now * 1000,
            },
        }
    )
    headers = clerk_headers(f"msg_local_{time.time_ns()}", body, now)
    reply = httpx.post(url, content=body, headers=headers | {"content-type": "application/json"})
    return f"{reply.status_code} {reply.text}"


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "send-clerk":
        sys.exit("usage: python -m dev.signing send-clerk <url of /webhooks/clerk> [user id]")
    print(send_clerk(*sys.argv[2:4]))

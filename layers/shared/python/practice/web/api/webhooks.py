"""The webhooks over HTTP: ``POST /webhooks/clerk`` and ``POST /webhooks/vapi``
(no JWT: each provider signs its requests; the endpoint verifies the raw bytes
before anything is parsed), and the delivery log for an org's admins."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema
from starlette.responses import Response

from practice.web.params import In, RouteParams
from practice.web.routes import Call, Reply, Router
from practice.webhooks.models import Acknowledged, Envelope, StoredEvents
from practice.webhooks.service import WebhookService

router = Router()

ACKNOWLEDGED = [
    Reply(200, Acknowledged, description="processed, ignored (with why) or a repeat"),
    Reply(202, Acknowledged, description="stored; processing failed and will be retried"),
]
REFUSALS = (400, 401, 413, 503)


def _documented(description: str, pattern: str) -> Any:
    # The format is documented, not enforced here: the endpoint checks it after
    # the signature's presence, so a malformed header is 400 (not 422).
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


DIGITS = "^[0-9]{1,16}$"


class ClerkHeaders(RouteParams):
    svix_id: Annotated[
        str | None, In("header", "svix-id"), _documented("the delivery id", "^[!-~]{1,255}$")
    ] = None
    svix_timestamp: Annotated[
        str | None, In("header", "svix-timestamp"), _documented("seconds since the epoch", DIGITS)
    ] = None
    svix_signature: Annotated[
        str | None,
        In("header", "svix-signature"),
        _documented("space-separated v1,<base64> entries", "^[^ ,]+,[^ ]+( [^ ,]+,[^ ]+)*$"),
    ] = None


class VapiHeaders(RouteParams):
    x_vapi_secret: Annotated[
        str | None, In("header", "x-vapi-secret"), Field(description="the shared secret")
    ] = None
    x_signature: Annotated[
        str | None,
        In("header", "x-signature"),
        _documented("hex HMAC-SHA256 of {x-timestamp}.{body}", "^(sha256=)?[0-9a-fA-F]+$"),
    ] = None
    x_timestamp: Annotated[
        str | None, In("header", "x-timestamp"), _documented("the signed time", DIGITS)
    ] = None


class EventsParams(RouteParams):
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=100)] = 50
    cursor: Annotated[str | None, In("query", "cursor"), Field(max_length=20)] = None


class OfEvent(RouteParams):
    event_id: Annotated[int, In("path", "eventId"), Field(ge=1)]


def _headers(call: Call) -> dict[str, str]:
    return {name.lower(): value for name, value in call.request.headers.items()}


@router.post(
    "/webhooks/clerk",
    params=ClerkHeaders,
    raw_body=Envelope,
    replies=ACKNOWLEDGED,
    errors=REFUSALS,
    public=True,
)
async def clerk_webhook(call: Call[ClerkHeaders, None], webhooks: WebhookService) -> Response:
    """A Clerk event delivered by Svix: users, organizations, memberships."""
    status, ack = webhooks.receive_clerk(_headers(call), await call.request.body())
    return call.reply(status, ack)


@router.post(
    "/webhooks/vapi",
    params=VapiHeaders,
    raw_body=Envelope,
    replies=ACKNOWLEDGED,
    errors=REFUSALS,
    public=True,
)
async def vapi_webhook(call: Call[VapiHeaders, None], webhooks: WebhookService) -> Response:
    """A Vapi server message: the end-of-call report and status updates change the
    attempt; other messages are acknowledged with an empty result."""
    status, ack = webhooks.receive_vapi(_headers(call), await call.request.body())
    return call.reply(status, ack)


@router.get(
    "/webhooks/events",
    params=EventsParams,
    replies=[Reply(200, StoredEvents)],
    errors=(403,),
)
async def webhook_events(call: Call[EventsParams, None], webhooks: WebhookService) -> Response:
    """The org's recent deliveries and their outcomes, newest first (admins)."""
    return call.reply(200, webhooks.recent(call.principal, call.params.limit, call.params.cursor))


@router.post(
    "/webhooks/events/{eventId}/replay",
    params=OfEvent,
    replies=[Reply(200, Acknowledged)],
    errors=(403, 404),
)
async def replay_webhook_event(call: Call[OfEvent, None], webhooks: WebhookService) -> Response:
    """Process one of the org's deliveries again, if it is not done (admins)."""
    return call.reply(200, webhooks.replay(call.principal, call.params.event_id))

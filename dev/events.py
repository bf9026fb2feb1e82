"""Writes the sample events in ``events/``: one per entry point and interesting case,
in the payload-2.0 shape `sam local generate-event apigateway http-api-proxy`
gives, usable unchanged with `sam local invoke -e` and `python -m dev invoke`.

File names say the function, the case and the status the replay test expects:
``<function>-<case>.<status>.json``. The events refer to the demo data
(``dev.seed``), and files of one function are replayed in name order against
one database, so a case that changes data sorts after the cases that read it.

Run ``python -m dev.events`` after changing a case; commit the files.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dev.gateway import HttpRequest, build_event
from dev.seed import (
    BUILTIN_SCENARIO_IDS,
    DEMO_ACTIVE_ATTEMPT_ID,
    DEMO_ADMIN,
    DEMO_CHAT_SESSION_ID,
    DEMO_CLERK_ORG_ID,
    DEMO_COMPLETED_ATTEMPT_ID,
    DEMO_EXPORT_ID,
    DEMO_MANAGER,
    DEMO_ORG_ID,
    DEMO_TRAINEE,
)
from dev.tokens import LOCAL_AZP, build_claims

EVENTS = Path(__file__).resolve().parents[1] / "events"
# A fixed clock keeps regenerated files identical; invoke does not check expiry.
ISSUED_AT = 1_790_000_000
TEN_YEARS = 10 * 365 * 86_400
ACTIVE, COMPLETED = str(DEMO_ACTIVE_ATTEMPT_ID), str(DEMO_COMPLETED_ATTEMPT_ID)
SCENARIO = str(next(iter(BUILTIN_SCENARIO_IDS.values())))
# Users the demo data does not have: resolve_principal provisions them from
# their (verified) token, as it would for a member Clerk told us about late.
OTHER_ORG = ("org_demo_globex", "user_events_globex_admin", "admin")
TEAMMATE = (DEMO_CLERK_ORG_ID, "user_events_teammate", "trainee")


def claims(user: str, role: str, org: str = DEMO_CLERK_ORG_ID, *, v1: bool = False) -> dict:
    """A Clerk-shaped token's claims for a demo user."""
    token = build_claims(org=org, user=user, role=role, v1=v1, now=ISSUED_AT, ttl=TEN_YEARS)
    return token | {"sid": f"sess_events_{user}"}


ADMIN = claims(DEMO_ADMIN, "admin")
MANAGER = claims(DEMO_MANAGER, "manager")
TRAINEE = claims(DEMO_TRAINEE, "trainee")


@dataclass
class Case:
    """One sample request and the status it must get."""

    name: str
    status: int
    method: str
    path: str
    route: str
    claims: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    base64_body: bool = False
    function: str = "attempts"


def attempt(name: str, status: int, method: str, action: str | None, who: dict | None, **kw: Any):
    """A case on the demo trainee's in-progress attempt (or ``attempt_id``)."""
    attempt_id = kw.pop("attempt_id", ACTIVE)
    query = {"action": action} if action else {}
    query |= kw.pop("query", {})
    return Case(
        name, status, method, f"/attempts/{attempt_id}", "/attempts/{attemptId}", who, query, **kw
    )


CASES = [
    Case("get-health", 200, "GET", "/health", "/health"),
    Case("get-me-admin", 200, "GET", "/me", "/me", ADMIN),
    Case("get-me-manager", 200, "GET", "/me", "/me", MANAGER),
    Case("get-me-trainee", 200, "GET", "/me", "/me", TRAINEE),
    Case("get-me-trainee-v1-claims", 200, "GET", "/me", "/me", claims(DEMO_TRAINEE, "trainee", v1=True)),
    Case("get-me-missing-org", 403, "GET", "/me", "/me", {"sub": DEMO_TRAINEE, "v": 2, "azp": LOCAL_AZP}),
    Case("get-me-no-claims", 401, "GET", "/me", "/me"),
    attempt("get-state-trainee", 200, "GET", "state", TRAINEE),
    attempt("get-state-manager", 200, "GET", "state", MANAGER),
    attempt("get-state-admin", 200, "GET", "state", ADMIN),
    attempt("get-state-default-action", 200, "GET", None, TRAINEE),
    attempt("get-state-other-org-admin", 404, "GET", "state", claims(*OTHER_ORG[1:], OTHER_ORG[0])),
    attempt("get-state-teammate", 404, "GET", "state", claims(*TEAMMATE[1:], TEAMMATE[0])),
    attempt("get-state-malformed-id", 422, "GET", "state", TRAINEE, attempt_id="not-a-uuid"),
    attempt("get-unknown-action", 422, "GET", "teleport", TRAINEE),
    attempt("get-info-manager", 200, "GET", "info", MANAGER),
    attempt("get-stats-admin", 200, "GET", "stats", ADMIN, query={"type": "stats"}),
    attempt("get-stats-active-manager", 200, "GET", "stats", MANAGER, query={"type": "active"}),
    attempt("get-stats-active-trainee", 403, "GET", "stats", TRAINEE, query={"type": "active"}),
    attempt("get-stats-optimization-admin", 200, "GET", "stats", ADMIN, query={"type": "optimization"}),
    attempt("get-stats-optimization-manager", 403, "GET", "stats", MANAGER, query={"type": "optimization"}),
    attempt("patch-optimize-clear-cache-admin", 200, "PATCH", "optimize", ADMIN, body={"operation": "clear_cache"}),
    attempt("patch-save-manager", 403, "PATCH", "save", MANAGER, body={"answers": {}, "expected_version": 1}),
    attempt("patch-save-stale-version", 409, "PATCH", "save", TRAINEE, body={"answers": {"q1": "a"}, "expected_version": 999}),
    attempt("patch-save-trainee", 200, "PATCH", "save", TRAINEE, body={"answers": {"q1": "Budget is approved"}, "auto_save_data": {"step": 2}}, headers={"If-Match": '"1"'}),
    attempt("patch-save-without-version", 428, "PATCH", "save", TRAINEE, body={"answers": {}}),
    attempt("post-activity-trainee", 201, "POST", "activity", TRAINEE, body=[{"event_type": "call_started", "payload": {"source": "web"}}, {"event_type": "answer_changed", "payload": {"question": "q1"}}]),
    attempt("post-activity-unknown-type", 422, "POST", "activity", TRAINEE, body=[{"event_type": "teleported"}]),
    attempt("post-batch-moved", 308, "POST", "batch", TRAINEE, body={}),
    attempt("post-missing-action", 405, "POST", None, TRAINEE, body={}),
    Case("post-start-base64-body", 201, "POST", "/attempts", "/attempts", TRAINEE, body={"scenario_id": SCENARIO}, base64_body=True),
    Case("post-start-invalid-json", 400, "POST", "/attempts", "/attempts", TRAINEE, body="{not json"),
    Case("post-start-malformed-body", 422, "POST", "/attempts", "/attempts", TRAINEE, body={"scenario_id": "nope"}),
    Case("post-start-trainee", 201, "POST", "/attempts", "/attempts", TRAINEE, body={"scenario_id": SCENARIO}),
    attempt("post-submit-completed-again", 200, "POST", "submit", TRAINEE, body={}, attempt_id=COMPLETED),
    attempt("post-submit-trainee-with-score", 403, "POST", "submit", TRAINEE, body={"score": 100}),
    attempt("post-upload-request-trainee", 201, "POST", "upload", TRAINEE, body={"content_type": "audio/webm", "size_bytes": 48000}),
    attempt("post-upload-wrong-type", 422, "POST", "upload", TRAINEE, body={"content_type": "text/html", "size_bytes": 10}),
    attempt("post-submit-trainee", 200, "POST", "submit", TRAINEE, body={"status": "completed"}),
]  # fmt: skip


def batch(name: str, status: int, who: dict | None, operation: str, data: Any, **kw: Any) -> Case:
    """A case of the batch function: ``{"operation", "data"}`` to POST /attempts/batch."""
    body = kw.pop("body", {"operation": operation, "data": data})
    return Case(name, status, "POST", "/attempts/batch", "/attempts/batch", who, body=body, function="batch", **kw)  # fmt: skip


UNKNOWN = "de30a770-0000-4000-8000-00000000dead"
# Batch answers 200 with a status per item, so these replay with the status
# their names say whichever attempts event ran before them.
CASES += [
    batch("activity-trainee", 200, TRAINEE, "batch_activity", [{"attempt_id": ACTIVE, "events": [{"event_type": "hint_viewed"}]}, {"attempt_id": COMPLETED, "events": [{"event_type": "note_added"}]}]),
    batch("invalid-json", 400, TRAINEE, "", None, body="{not json"),
    batch("multiple-states-other-org-admin", 200, claims(*OTHER_ORG[1:], OTHER_ORG[0]), "multiple_states", [ACTIVE, COMPLETED]),
    batch("multiple-states-trainee", 200, TRAINEE, "multiple_states", [ACTIVE, COMPLETED, UNKNOWN]),
    batch("no-claims", 401, None, "multiple_states", [ACTIVE]),
    batch("over-limit", 422, TRAINEE, "multiple_states", [UNKNOWN] * 101),
    batch("save-duplicate-ids", 422, TRAINEE, "batch_save", [{"attempt_id": ACTIVE, "expected_version": 1}] * 2),
    batch("save-manager", 200, MANAGER, "batch_save", [{"attempt_id": ACTIVE, "answers": {"q1": "coach"}, "expected_version": 1}]),
    batch("save-trainee-with-idempotency-key", 200, TRAINEE, "batch_save", [{"attempt_id": ACTIVE, "answers": {"q1": "Budget is approved"}, "expected_version": 2}, {"attempt_id": COMPLETED, "answers": {}, "expected_version": 1}, {"attempt_id": UNKNOWN, "expected_version": 1}], headers={"Idempotency-Key": "events-batch-save-1"}),
    batch("submit-trainee", 200, TRAINEE, "batch_submit", [ACTIVE, {"attempt_id": COMPLETED, "status": "completed"}, UNKNOWN]),
    batch("unknown-operation", 422, TRAINEE, "teleport", [ACTIVE]),
    batch("validate-trainee", 200, TRAINEE, "validate", [ACTIVE, COMPLETED, UNKNOWN]),
    batch("mixed-reads-trainee", 200, TRAINEE, "mixed_reads", [{"type": "state", "attempt_id": ACTIVE}, {"type": "info", "attempt_id": COMPLETED}, {"type": "stats", "attempt_id": ACTIVE}, {"type": "state", "attempt_id": UNKNOWN}]),
]  # fmt: skip


def export(
    name: str, status: int, method: str, who: dict | None, export_id: str | None = None, **kw: Any
) -> Case:
    """A case of the exports function: ``/exports``, or ``/exports/{exportId}``."""
    if export_id is None:
        return Case(name, status, method, "/exports", "/exports", who, function="exports", **kw)
    return Case(name, status, method, f"/exports/{export_id}", "/exports/{exportId}", who, function="exports", **kw)  # fmt: skip


EXPORT = str(DEMO_EXPORT_ID)
HALF_YEAR = {"kind": "attempts", "filters": {"from": "2026-01-01", "to": "2026-06-30"}}
CASES += [
    export("get-admin", 200, "GET", ADMIN, EXPORT),
    export("get-malformed-id", 422, "GET", ADMIN, "not-a-uuid"),
    export("get-other-org-admin", 404, "GET", claims(*OTHER_ORG[1:], OTHER_ORG[0]), EXPORT),
    export("get-trainee-not-theirs", 404, "GET", TRAINEE, EXPORT),
    export("list-admin", 200, "GET", ADMIN),
    export("list-trainee-page", 200, "GET", TRAINEE, query={"limit": "5"}),
    export("post-admin", 202, "POST", ADMIN, body=HALF_YEAR),
    export("post-no-claims", 401, "POST", None, body=HALF_YEAR),
    export("post-period-too-long", 422, "POST", MANAGER, body={"kind": "attempts", "filters": {"from": "2024-01-01", "to": "2026-01-01"}}),
    export("post-trainee-with-idempotency-key", 202, "POST", TRAINEE, body=HALF_YEAR | {"format": "csv"}, headers={"Idempotency-Key": "events-export-1"}),
    export("post-unknown-kind", 422, "POST", ADMIN, body={"kind": "scenarios", "filters": HALF_YEAR["filters"]}),
]  # fmt: skip


def queue_events() -> dict[str, dict[str, Any]]:
    """The exports worker's SQS events, as Lambda's event source mapping sends
    them (batch size 1): the demo export, then the same message delivered again
    (it does nothing), by file name."""
    from dev.queues import sqs_event

    message = {
        "MessageId": "events-export-message-1",
        "ReceiptHandle": "events-export-receipt-1",
        "Body": json.dumps({"export_id": EXPORT, "org_id": str(DEMO_ORG_ID)}),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(ISSUED_AT * 1000),
            "SenderId": "AROAEXAMPLE:practice-exports",
            "ApproximateFirstReceiveTimestamp": str(ISSUED_AT * 1000 + 20),
        },
        "MD5OfBody": "",
    }
    arn = "arn:aws:sqs:us-east-1:123456789012:practice-ExportsQueue"
    again = message | {"Attributes": message["Attributes"] | {"ApproximateReceiveCount": "2"}}
    return {
        "exports-worker-demo-export.200.json": sqs_event([message], arn),
        "exports-worker-demo-export-redelivered.200.json": sqs_event([again], arn),
    }


# The learner's side: tracking, the scenario catalog, chat-session progress.
CHAT = str(DEMO_CHAT_SESSION_ID)
GLOBEX = claims(*OTHER_ORG[1:], OTHER_ORG[0])
MATE = claims(*TEAMMATE[1:], TEAMMATE[0])


def user(
    name: str, status: int, who: dict | None, what: str, member: str = DEMO_TRAINEE, **kw: Any
):
    """A case of ``GET /users/{userId}/<what>`` (``what`` may hold the scenario)."""
    route = "/users/{userId}/" + what.replace(SCENARIO, "{scenarioId}").replace(
        UNKNOWN, "{scenarioId}"
    )
    return Case(name, status, "GET", f"/users/{member}/{what}", route, who, **kw)


def scenario(
    name: str,
    status: int,
    method: str,
    who: dict | None,
    suffix: str = "",
    *,
    scenario_id: str = SCENARIO,
    **kw: Any,
):
    """A case on a scenario (the built-in one unless named)."""
    return Case(
        name,
        status,
        method,
        f"/scenarios/{scenario_id}{suffix}",
        "/scenarios/{scenarioId}" + suffix,
        who,
        **kw,
    )


def chat(
    name: str,
    status: int,
    method: str,
    who: dict | None,
    suffix: str = "/scenario-progress",
    **kw: Any,
):
    """A case on the demo trainee's chat session."""
    return Case(
        name,
        status,
        method,
        f"/chat-sessions/{CHAT}{suffix}",
        "/chat-sessions/{sessionId}" + suffix,
        who,
        **kw,
    )


def progress_document(scenario_id: str = "prep-demo", current: int = 0) -> dict[str, Any]:
    """Seed 003's ScenarioProgress, one step of one action."""
    step = {
        "title": "Research",
        "description": "Know the account",
        "actions": [{"label": "Search", "prompt": "Find news", "type": "research"}],
    }
    return {
        "scenario": {
            "id": scenario_id,
            "title": "Prep",
            "description": "Prepare the call",
            "steps": [step],
        },
        "currentStep": current,
        "completedSteps": [],
        "triggeredActions": {"step_0_action_0": True},
        "startedAt": "2026-11-20T10:00:00.000Z",
        "lastUpdatedAt": "2026-11-20T10:05:00.000Z",
    }


PROGRESS = {
    "scenario_progress": progress_document(),
    "scenario_id": "prep-demo",
    "completed": False,
}
CASES += [
    user("get-user-attempts-trainee-me", 200, TRAINEE, "attempts", member="me", query={"limit": "5"}),
    user("get-user-attempts-admin", 200, ADMIN, "attempts"),
    user("get-user-attempts-other-org-admin", 404, GLOBEX, "attempts"),
    user("get-user-attempts-teammate", 404, MATE, "attempts"),
    user("get-user-best-attempts-manager", 200, MANAGER, "best-attempts"),
    user("get-user-recent-attempts-trainee", 200, TRAINEE, "recent-attempts", query={"limit": "3"}),
    user("get-user-improvement-trainee", 200, TRAINEE, f"scenarios/{SCENARIO}/improvement", query={"days_back": "180"}),
    user("get-user-comparison-trainee", 200, TRAINEE, f"scenarios/{SCENARIO}/comparison"),
    user("get-user-comparison-unknown-scenario", 404, TRAINEE, f"scenarios/{UNKNOWN}/comparison"),
    user("get-user-scenario-progress-admin", 200, ADMIN, "scenario-progress", query={"saved": "true"}),
    Case("get-scenarios-trending-trainee", 200, "GET", "/scenarios", "/scenarios", TRAINEE, query={"sort": "trending", "limit": "5"}),
    Case("get-scenarios-unknown-sort", 422, "GET", "/scenarios", "/scenarios", TRAINEE, query={"sort": "random"}),
    scenario("get-scenario-trainee", 200, "GET", TRAINEE),
    scenario("get-scenario-unknown", 404, "GET", TRAINEE, scenario_id=UNKNOWN),
    Case("post-scenario-manager", 201, "POST", "/scenarios", "/scenarios", MANAGER, body={"title": "Renewal call", "difficulty": "advanced", "category": "renewal"}),
    Case("post-scenario-trainee", 403, "POST", "/scenarios", "/scenarios", TRAINEE, body={"title": "Mine"}),
    scenario("patch-scenario-built-in-admin", 403, "PATCH", ADMIN, body={"title": "Ours now"}),
    scenario("delete-scenario-save-trainee", 200, "DELETE", TRAINEE, "/save"),
    scenario("put-scenario-save-trainee", 200, "PUT", TRAINEE, "/save"),
    scenario("put-scenario-rating-trainee", 200, "PUT", TRAINEE, "/rating", body={"rating": 4}),
    scenario("put-scenario-rating-out-of-range", 422, "PUT", TRAINEE, "/rating", body={"rating": 6}),
    scenario("put-scenario-notes-trainee", 200, "PUT", TRAINEE, "/notes", body={"notes": "Open with the budget question"}),
    scenario("delete-scenario-rating-trainee", 200, "DELETE", TRAINEE, "/rating"),
    Case("post-chat-session-trainee", 201, "POST", "/chat-sessions", "/chat-sessions", TRAINEE, body={"title": "Prep for Friday"}),
    Case("get-chat-sessions-trainee", 200, "GET", "/chat-sessions", "/chat-sessions", TRAINEE, query={"limit": "10"}),
    chat("get-chat-session-trainee", 200, "GET", TRAINEE, ""),
    chat("get-chat-session-other-org-admin", 404, "GET", GLOBEX, ""),
    chat("get-chat-progress-manager", 200, "GET", MANAGER),
    chat("delete-chat-progress-trainee", 204, "DELETE", TRAINEE),
    chat("put-chat-progress-contradicts-scenario", 409, "PUT", TRAINEE, body=PROGRESS | {"scenario_progress": progress_document(current=3)}),
    chat("put-chat-progress-manager", 403, "PUT", MANAGER, body=PROGRESS),
    chat("put-chat-progress-stale-if-match", 412, "PUT", TRAINEE, body=PROGRESS, headers={"If-Match": '"99"'}),
    chat("put-chat-progress-trainee", 200, "PUT", TRAINEE, body=PROGRESS, headers={"If-Match": '"1"'}),
]  # fmt: skip


def _webhooks() -> list[Case]:
    """The webhooks' cases: deliveries signed with the local stack's secrets at
    ``signing.SIGNED_AT`` (``python -m dev invoke`` verifies them at that time)."""
    from dev import signing

    at = signing.SIGNED_AT
    ms = at * 1000

    def clerk(name: str, status: int, payload: Any, *, signed_at: int = at, **headers: str) -> Case:
        body = payload if isinstance(payload, str) else signing.body_text(payload)
        signed = signing.clerk_headers(f"msg_events_{name}", body, signed_at) | headers
        return Case(
            f"clerk-{name}",
            status,
            "POST",
            "/webhooks/clerk",
            "/webhooks/clerk",
            body=body,
            headers=signed,
            function="webhooks",
        )

    def vapi(name: str, status: int, message: Any, headers: dict | None = None) -> Case:
        body = message if isinstance(message, str) else signing.body_text({"message": message})
        return Case(
            f"vapi-{name}",
            status,
            "POST",
            "/webhooks/vapi",
            "/webhooks/vapi",
            body=body,
            headers=signing.vapi_secret_headers() if headers is None else headers,
            function="webhooks",
        )

    org = {
        "type": "organization.updated",
        "object": "event",
        "timestamp": ms,
        "data": {
            "id": DEMO_CLERK_ORG_ID,
            "object": "organization",
            "name": "Acme (renamed)",
            "slug": "acme",
            "updated_at": ms,
        },
    }
    member = {
        "type": "organizationMembership.created",
        "object": "event",
        "timestamp": ms,
        "data": {
            "id": "orgmem_events",
            "object": "organization_membership",
            "role": "org:member",
            "organization": {"id": DEMO_CLERK_ORG_ID, "name": "Acme"},
            "public_user_data": {
                "user_id": "user_events_new",
                "first_name": "Nia",
                "last_name": "New",
                "identifier": "nia@acme.example",
            },
            "created_at": ms,
            "updated_at": ms,
        },
    }
    user = {
        "type": "user.updated",
        "object": "event",
        "timestamp": ms,
        "data": {
            "id": "user_events_new",
            "object": "user",
            "first_name": "Nia",
            "last_name": "Newer",
            "primary_email_address_id": "idn_1",
            "updated_at": ms + 1,
            "email_addresses": [{"id": "idn_1", "email_address": "nia@acme.example"}],
        },
    }
    call = {"id": "call_events_1", "assistantOverrides": {"metadata": {"attemptId": ACTIVE}}}
    report = {
        "type": "end-of-call-report",
        "timestamp": ms,
        "call": call,
        "endedReason": "customer-ended-call",
        "startedAt": "2026-09-21T14:10:00Z",
        "endedAt": "2026-09-21T14:13:03Z",
        "artifact": {
            "transcript": "AI: Hello, this is Sam.\nUser: Hi Sam.",
            "messages": [
                {"role": "bot", "message": "Hello, this is Sam.", "time": ms, "endTime": ms + 1500},
                {"role": "user", "message": "Hi Sam.", "time": ms + 2000, "endTime": ms + 2800},
            ],
            "recordingUrl": "https://storage.vapi.ai/call_events_1-mono.wav",
            "stereoRecordingUrl": "https://storage.vapi.ai/call_events_1-stereo.wav",
        },
        "analysis": {
            "summary": "Warm opening; ask about budget earlier.",
            "structuredData": {"score": 78, "discovery": 3},
            "successEvaluation": "true",
        },
    }
    status = {
        "type": "status-update",
        "status": "in-progress",
        "timestamp": ms - 180_000,
        "call": {"id": "call_events_2", "customer": {"externalId": COMPLETED}},
    }
    unknown = report | {"call": {"id": "call_events_unknown"}}
    return [
        clerk("bad-signature", 401, org, **{"svix-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        clerk("garbled-timestamp", 400, org, **{"svix-timestamp": "yesterday"}),
        clerk("membership-created", 200, member),
        clerk("organization-updated", 200, org),
        clerk("stale-timestamp", 401, org, signed_at=at - 600),
        clerk("user-updated", 200, user),
        vapi("end-of-call-report", 200, report),
        vapi("malformed-body", 400, "{not json"),
        vapi("status-update", 200, status),
        vapi("tool-calls", 200, {"type": "tool-calls", "call": {"id": "call_events_1"}, "toolCallList": []}),
        vapi("unknown-call", 200, unknown),
        vapi("wrong-secret", 401, report, {"x-vapi-secret": "not-the-secret"}),
    ]  # fmt: skip


CASES += _webhooks()


def report(name: str, status: int, who: dict | None, path: str, **kw: Any) -> Case:
    """A case of the reports function (a GET of ``/reports/<path>`` unless told)."""
    method = kw.pop("method", "GET")
    full = f"/reports/{path}"
    return Case(name, status, method, full, kw.pop("route", full), who, function="reports", **kw)


def refresh(name: str, status: int, who: dict | None, **kw: Any) -> Case:
    """A case of the refresh function (``POST /reports/refresh`` unless told)."""
    method, path = kw.pop("method", "POST"), kw.pop("path", "/reports/refresh")
    route = kw.pop("route", path)
    if method == "POST":
        kw.setdefault("body", {})
    return Case(name, status, method, path, route, who, function="refresh", **kw)


CASES += [
    report("get-assignments-manager", 200, MANAGER, "assignments"),
    report("get-digest-manager", 200, MANAGER, "digest"),
    report("get-leaderboard-admin-org", 200, ADMIN, "leaderboard", query={"scope": "org"}),
    report("get-leaderboard-manager-org", 403, MANAGER, "leaderboard", query={"scope": "org"}),
    report("get-leaderboard-manager-team", 200, MANAGER, "leaderboard", query={"scope": "team"}),
    report("get-leaderboard-bad-month", 422, ADMIN, "leaderboard", query={"month": "2026-13"}),
    report("get-me-no-claims", 401, None, "me"),
    report("get-me-trainee", 200, TRAINEE, "me"),
    report("get-org-overview-admin", 200, ADMIN, "org-overview"),
    report("get-org-overview-manager", 403, MANAGER, "org-overview"),
    report("get-recent-attempts-admin", 200, ADMIN, "recent-attempts", query={"limit": "5"}),
    report("get-recent-attempts-trainee", 403, TRAINEE, "recent-attempts"),
    report("get-scenario-insights-manager", 200, MANAGER, "scenario-insights"),
    report("get-team-manager", 200, MANAGER, "team"),
    report("get-team-trainee", 403, TRAINEE, "team"),
    report("put-digest-manager", 200, MANAGER, "digest", method="PUT", body={"opt_out": False}),
    refresh("get-run-unknown-admin", 404, ADMIN, method="GET", path="/reports/refresh/runs/999999", route="/reports/refresh/runs/{runId}"),
    refresh("post-admin", 200, ADMIN),
    refresh("post-full-admin", 200, ADMIN, body={"full": True}),
    refresh("post-manager", 403, MANAGER),
]  # fmt: skip


def event_for(case: Case) -> dict[str, Any]:
    """The payload-2.0 event for one case."""
    raw = b""
    if case.body is not None:
        raw = (case.body if isinstance(case.body, str) else json.dumps(case.body)).encode()
    headers = [("Host", "localhost:3000"), ("User-Agent", "curl/8.5.0")]
    if raw:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    headers += list(case.headers.items())
    target = f"{case.path}?{urlencode(case.query)}" if case.query else case.path
    # Each {name} of the route takes the segment of the path in its place.
    path_parameters = {
        template[1:-1]: segment
        for template, segment in zip(case.route.split("/"), case.path.split("/"), strict=False)
        if template.startswith("{") and template.endswith("}")
    } or None
    event = build_event(
        HttpRequest(case.method, target, headers, raw),
        route_key=f"{case.method} {case.route}",
        path_parameters=path_parameters,
        claims=case.claims,
        request_id=f"events-{case.name}",
        now=ISSUED_AT,
    )
    event["headers"]["x-amzn-trace-id"] = "Root=1-00000000-000000000000000000000000"
    if case.base64_body and raw:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    return event


def schedule_events() -> dict[str, dict[str, Any]]:
    """Each schedule's event as EventBridge sends it, and EventBridge's own
    scheduled event for a function that runs one job (as a rule without Input
    would send it), by file name."""
    from dev.schedules import scheduled_event
    from dev.template import load_template, schedules

    at = datetime.fromtimestamp(ISSUED_AT, UTC)
    found: dict[str, dict[str, Any]] = {}
    for schedule in schedules(load_template()):
        case = re.sub(r"(?<!^)(?=[A-Z])", "-", schedule.name).lower()
        found[f"{schedule.function.directory}-{case}.200.json"] = scheduled_event(schedule, at)
        if len(schedule.function.schedules) == 1:
            bare = replace(schedule, input=None)
            event = scheduled_event(bare, at) | {"id": f"events-{case}"}
            found[f"{schedule.function.directory}-scheduled-event.200.json"] = event
    return found


def main() -> int:
    """Write every case to ``events/<function>-<case>.<status>.json``, and every
    schedule's event beside them."""
    EVENTS.mkdir(exist_ok=True)
    for case in CASES:
        path = EVENTS / f"{case.function}-{case.name}.{case.status}.json"
        path.write_text(json.dumps(event_for(case), indent=2) + "\n")
    scheduled = schedule_events() | queue_events()
    for name, event in scheduled.items():
        (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {len(CASES) + len(scheduled)} events to {EVENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

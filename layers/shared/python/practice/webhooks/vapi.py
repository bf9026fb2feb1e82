"""Vapi server messages: what is stored, and what each does.

- ``end-of-call-report``: ends an attempt in progress through the attempt
  verdict (attempt_submit: counters and fact row once), stores the call's
  artifacts, scores it from the analysis unless someone already did;
- ``status-update``: moves the attempt's call status forward only (never
  back); the attempt's version is untouched;
- ``tool-calls``, ``assistant-request``: answered 200 with an empty result
  (out of scope), not stored;
- ``transcript``, ``hang``, ``conversation-update``, ``speech-update`` and
  others: informational, answered 200, not stored.

The attempt is found by the attempt id in ``call.assistantOverrides.metadata``
(``attemptId`` or ``attempt_id``), then ``customer.externalId``, then the stored
``vapi_call_id`` (``webhook_find_attempt``, the one lookup across tenants).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from practice.core.errors import Malformed
from practice.webhooks.clerk import Applied

STORED = {"end-of-call-report", "status-update"}

FIND = "select attempt_id, org_id from webhook_find_attempt(%s, %s, %s)"
ENTER_ORG = (
    "select practice_enter(%s::uuid, %s::text, 'system', current_setting('statement_timeout'))"
)
STATUS = "select vapi_apply_status(%s, %s, %s, %s) as moved"
REPORT = "select end_verdict, score_verdict from vapi_apply_report(%s, %s, %s, %s)"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def message_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``message`` object of a Vapi body."""
    message = payload.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Malformed("the body has no message with a type", field="body.message.type")
    return message


def delivery_key(message: dict[str, Any]) -> tuple[str, str]:
    """The dedupe key of a stored message, and its call id: the call and the
    message type, plus the message time for a status update."""
    call_id = _text(_dict(message.get("call")).get("id"))
    if call_id is None:
        raise Malformed("the message has no call.id", field="body.message.call.id")
    kind = message["type"]
    if kind == "status-update":
        status = _text(message.get("status"))
        if status is None:
            raise Malformed("the status update has no status", field="body.message.status")
        return f"{call_id}:{kind}:{status}:{message.get('timestamp')}", call_id
    return f"{call_id}:{kind}", call_id


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().removesuffix("%"))
        except ValueError:
            return None
    return None


def score_of(analysis: dict[str, Any]) -> float | None:
    """A numeric score in 0-100 the analysis carries: ``structuredData.score``,
    else ``successEvaluation`` when it is a number (a pass/fail rubric is not)."""
    for value in (
        _dict(analysis.get("structuredData")).get("score"),
        analysis.get("successEvaluation"),
    ):
        number = _number(value)
        if number is not None and 0 <= number <= 100:
            return number
    return None


def _speaking_ms(messages: list[Any]) -> dict[str, int] | None:
    # talk_ms: the trainee (role user) speaking; listen_ms: the assistant (bot).
    talk = listen = 0
    timed = False
    for raw in messages:
        item = _dict(raw)
        start, end = item.get("time"), item.get("endTime")
        if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
            span = int(end - start)
        elif isinstance(item.get("duration"), int | float):
            span = int(item["duration"])
        else:
            continue
        timed = True
        if item.get("role") == "user":
            talk += span
        elif item.get("role") in ("bot", "assistant"):
            listen += span
    return {"talk_ms": talk, "listen_ms": listen} if timed else None


def report_of(message: dict[str, Any], call_id: str) -> dict[str, Any]:
    """What an end-of-call report gives the attempt (vapi_apply_report's input)."""
    artifact = _dict(message.get("artifact"))
    analysis = _dict(message.get("analysis"))
    recording = _dict(artifact.get("recording"))
    started, ended = _when(message.get("startedAt")), _when(message.get("endedAt"))
    if started and ended:
        duration: int | None = max(0, round((ended - started).total_seconds()))
    else:
        fallback = _number(message.get("durationSeconds"))
        duration = max(0, round(fallback)) if fallback is not None else None
    messages = artifact.get("messages", message.get("messages"))
    urls = {
        "recording": _text(artifact.get("recordingUrl")) or _text(message.get("recordingUrl")),
        "stereo": _text(artifact.get("stereoRecordingUrl"))
        or _text(recording.get("stereoUrl"))
        or _text(message.get("stereoRecordingUrl")),
        **{
            f"mono_{key}": url
            for key, value in _dict(recording.get("mono")).items()
            if (url := _text(value))
        },
    }
    urls = {key: value for key, value in urls.items() if value}
    structured = analysis.get("structuredData")
    if duration is not None:
        duration = min(duration, 2**31 - 1)
    report = {
        "call_id": call_id,
        "ended_reason": _text(message.get("endedReason")),
        "ended_at": ended.isoformat() if ended else None,
        "duration_seconds": duration,
        "transcript_text": _text(artifact.get("transcript")) or _text(message.get("transcript")),
        "transcript_json": messages if isinstance(messages, list) else None,
        "recording_url": urls.get("recording") or urls.get("stereo"),
        "recording_urls": urls or None,
        "score": score_of(analysis),
        "score_breakdown": structured if isinstance(structured, dict) and structured else None,
        "feedback_text": _text(analysis.get("summary")),
        "kpis": _speaking_ms(messages) if isinstance(messages, list) else None,
    }
    return {key: value for key, value in report.items() if value is not None}


def apply(conn: Connection, payload: dict[str, Any], caller: str) -> Applied:
    """Apply one stored Vapi message in the caller's transaction (the system
    principal without an org: the org becomes the attempt's once it is found)."""
    message = message_of(payload)
    kind = message["type"]
    if kind not in STORED:
        return Applied("ignored", f"message type {kind} is informational")
    _key, call_id = delivery_key(message)
    call = _dict(message.get("call"))
    metadata = _dict(_dict(call.get("assistantOverrides")).get("metadata"))
    attempt_hint = _uuid(metadata.get("attemptId") or metadata.get("attempt_id"))
    external = _text(_dict(call.get("customer")).get("externalId"))
    found = conn.execute(FIND, [attempt_hint, external, call_id]).fetchone()
    if found is None:
        return Applied("ignored", "no attempt is known for this call")
    attempt_id, org_id = found["attempt_id"], found["org_id"]
    conn.execute(ENTER_ORG, [org_id, caller])
    if kind == "status-update":
        moved = conn.execute(
            STATUS, [org_id, attempt_id, message["status"], _text(message.get("endedReason"))]
        ).fetchone()["moved"]
        if not moved:
            return Applied("ignored", "the call's status is already as far", org_id)
        return Applied("processed", None, org_id)
    verdicts = conn.execute(
        REPORT, [org_id, attempt_id, caller, Jsonb(report_of(message, call_id))]
    ).fetchone()
    if verdicts["end_verdict"] not in ("ended", "ended_before"):
        return Applied("ignored", f"the attempt was not ended: {verdicts['end_verdict']}", org_id)
    return Applied("processed", None, org_id)

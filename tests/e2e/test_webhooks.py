"""The webhooks function: signatures made by independent signers (the svix
package for Clerk, a test-side HMAC for Vapi), deliveries stored once, Clerk
events in every order, Vapi reports ending attempts through the attempt verdict,
and failed deliveries retried once."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import psycopg
import pytest

from dev import signing
from tests.conftest import MigratedDatabase
from tests.e2e.conftest import Reply, call_handler
from tests.support import User, World, http_event


def owner_rows(database: MigratedDatabase, sql: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def post(app: ModuleType, path: str, body: str, headers: dict[str, str]) -> Reply:
    return call_handler(app, http_event("POST", path, body=body, headers=headers))


def send_clerk(
    app: ModuleType,
    payload: dict[str, Any],
    *,
    msg_id: str | None = None,
    at: int | None = None,
    secret: str = signing.CLERK_SECRET,
) -> Reply:
    body = signing.body_text(payload)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    headers = signing.clerk_headers(msg_id, body, at or int(time.time()), secret)
    return post(app, "/webhooks/clerk", body, headers)


def send_vapi(app: ModuleType, message: dict[str, Any]) -> Reply:
    body = signing.body_text({"message": message})
    return post(app, "/webhooks/vapi", body, signing.vapi_secret_headers())


def stored(database: MigratedDatabase, source: str, event_id: str) -> list[tuple]:
    return owner_rows(
        database,
        "select outcome, attempts, reason from webhook_events where source = %s and event_id = %s",
        [source, event_id],
    )


# ---------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------

ORG_EVENT = {
    "type": "organization.updated",
    "object": "event",
    "data": {"id": "org_signature_probe", "name": "Probe", "slug": None, "updated_at": 1},
    "timestamp": 1,
}


def _signed(msg_id: str, at: int, secret: str = signing.CLERK_SECRET) -> tuple[str, dict]:
    body = signing.body_text(ORG_EVENT | {"data": ORG_EVENT["data"] | {"id": f"org_{msg_id}"}})
    return body, signing.clerk_headers(msg_id, body, at, secret)


def test_clerk_signatures_answer_exactly(webhooks_app, database: MigratedDatabase) -> None:
    now = int(time.time())
    cases: list[tuple[str, Any, int, bool]] = []

    def case(name: str, mutate, status: int, stores: bool) -> None:
        cases.append((name, mutate, status, stores))

    case("good", lambda b, h: (b, h), 200, True)
    case("rotated secret", None, 200, True)
    case(
        "wrong secret",
        lambda b, h: (b, signing.clerk_headers(h["svix-id"], b, now, "whsec_" + "QUFBQQ==")),
        401,
        False,
    )
    case("tampered body", lambda b, h: (b.replace("Probe", "Prob3"), h), 401, False)
    case("stale", lambda b, h: (b, signing.clerk_headers(h["svix-id"], b, now - 330)), 401, False)
    case("future", lambda b, h: (b, signing.clerk_headers(h["svix-id"], b, now + 330)), 401, False)
    case(
        "missing signature",
        lambda b, h: (b, {k: v for k, v in h.items() if k != "svix-signature"}),
        401,
        False,
    )
    case("missing all", lambda b, _h: (b, {}), 401, False)
    case("garbled timestamp", lambda b, h: (b, h | {"svix-timestamp": "yesterday"}), 400, False)
    case("garbled signature", lambda b, h: (b, h | {"svix-signature": "nonsense"}), 400, False)
    case(
        "one good among several",
        lambda b, h: (b, h | {"svix-signature": f"v1,AAAA v2,BBBB {h['svix-signature']} v1,CCCC"}),
        200,
        True,
    )
    case("unsigned version only", lambda b, h: (b, h | {"svix-signature": "v2,AAAA"}), 401, False)
    for name, mutate, status, stores in cases:
        msg_id = f"msg_sig_{uuid.uuid4().hex}"
        if mutate is None:  # signed with the previous secret, during a rotation
            body, headers = _signed(msg_id, now, signing.CLERK_SECRET_PREVIOUS)
        else:
            body, headers = mutate(*_signed(msg_id, now))
        reply = post(webhooks_app, "/webhooks/clerk", body, headers)
        assert reply.status == status, (name, reply.body)
        assert bool(stored(database, "clerk", msg_id)) is stores, name


def test_malformed_bodies_and_oversized_ones(webhooks_app) -> None:
    now = int(time.time())
    for body in ("not json", "[1, 2]", '{"data": {}}'):
        headers = signing.clerk_headers(f"msg_{uuid.uuid4().hex}", body, now)
        assert post(webhooks_app, "/webhooks/clerk", body, headers).status == 400, body
    huge = signing.body_text(
        ORG_EVENT | {"pad": "x" * (webhooks_app.settings.webhook_max_body_bytes)}
    )
    headers = signing.clerk_headers("msg_huge", huge, now)
    assert post(webhooks_app, "/webhooks/clerk", huge, headers).status == 413


def test_vapi_secret_and_hmac_modes(webhooks_app, monkeypatch) -> None:
    message = {"type": "transcript", "call": {"id": "call_x"}, "transcript": "hi"}
    body = signing.body_text({"message": message})
    ok = post(webhooks_app, "/webhooks/vapi", body, signing.vapi_secret_headers())
    assert ok.status == 200
    assert ok.body["outcome"] == "ignored"
    assert post(webhooks_app, "/webhooks/vapi", body, {"x-vapi-secret": "nope"}).status == 401
    assert post(webhooks_app, "/webhooks/vapi", body, {}).status == 401

    service = webhooks_app.webhooks
    monkeypatch.setattr(
        service, "settings", service.settings.model_copy(update={"webhook_vapi_auth": "hmac"})
    )
    now = int(time.time())
    assert (
        post(webhooks_app, "/webhooks/vapi", body, signing.vapi_hmac_headers(body, now)).status
        == 200
    )
    assert (
        post(
            webhooks_app, "/webhooks/vapi", body, signing.vapi_hmac_headers(body, now * 1000)
        ).status
        == 200
    )
    bad = [
        signing.vapi_hmac_headers(body, now, "other"),
        signing.vapi_hmac_headers(body + " ", now),
        signing.vapi_hmac_headers(body, now - 330),
        signing.vapi_hmac_headers(body, now + 330),
        {"x-timestamp": str(now)},
    ]
    for headers in bad:
        assert post(webhooks_app, "/webhooks/vapi", body, headers).status == 401, headers
    garbled = signing.vapi_hmac_headers(body, now) | {"x-signature": "zz-not-hex"}
    assert post(webhooks_app, "/webhooks/vapi", body, garbled).status == 400
    garbled = signing.vapi_hmac_headers(body, now) | {"x-timestamp": "soon"}
    assert post(webhooks_app, "/webhooks/vapi", body, garbled).status == 400


# ---------------------------------------------------------------------------
# Clerk: every order converges to the newest event
# ---------------------------------------------------------------------------


def org_event(kind: str, clerk_org: str, name: str, at: int) -> dict[str, Any]:
    data: dict[str, Any] = {"id": clerk_org, "object": "organization"}
    if kind == "deleted":
        data["deleted"] = True
    else:
        data |= {"name": name, "slug": None, "updated_at": at, "created_at": 1_000}
    return {"type": f"organization.{kind}", "object": "event", "data": data, "timestamp": at + 5}


def membership_event(kind: str, clerk_org: str, user: str, role: str, at: int) -> dict[str, Any]:
    data = {
        "id": f"orgmem_{user}",
        "object": "organization_membership",
        "role": role,
        "organization": {"id": clerk_org, "name": f"Org {clerk_org}"},
        "public_user_data": {
            "user_id": user,
            "first_name": "Mem",
            "last_name": role,
            "identifier": f"{user}@example.com",
        },
        "created_at": 1_000,
        "updated_at": at,
    }
    return {
        "type": f"organizationMembership.{kind}",
        "object": "event",
        "data": data,
        "timestamp": at + 5,
    }


def user_event(kind: str, user: str, first: str, at: int) -> dict[str, Any]:
    if kind == "deleted":
        data: dict[str, Any] = {"id": user, "object": "user", "deleted": True}
    else:
        data = {
            "id": user,
            "object": "user",
            "first_name": first,
            "last_name": "Person",
            "primary_email_address_id": "idn_1",
            "email_addresses": [{"id": "idn_1", "email_address": f"{first.lower()}@example.com"}],
            "updated_at": at,
        }
    return {"type": f"user.{kind}", "object": "event", "data": data, "timestamp": at + 5}


ORDERS = list(itertools.permutations(["created", "updated", "deleted"]))


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_organization_events_in_any_order_converge(webhooks_app, database, order) -> None:
    clerk_org = f"org_order_{uuid.uuid4().hex[:8]}"
    times = {"created": 1_000, "updated": 2_000, "deleted": 3_000}
    names = {"created": "First", "updated": "Second", "deleted": None}
    for kind in order:
        reply = send_clerk(webhooks_app, org_event(kind, clerk_org, names[kind], times[kind]))
        assert reply.status == 200, reply.body
    # The newest event is the delete: the org is inactive, whatever came after it.
    [(deleted,)] = owner_rows(
        database, "select deleted_at is not null from orgs where clerk_org_id = %s", [clerk_org]
    )
    assert deleted is True
    # Without the delete, the newest update wins whatever the order.
    other = f"org_order_{uuid.uuid4().hex[:8]}"
    for kind in [k for k in order if k != "deleted"]:
        send_clerk(webhooks_app, org_event(kind, other, names[kind], times[kind]))
    [(name,)] = owner_rows(database, "select name from orgs where clerk_org_id = %s", [other])
    assert name == "Second"


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_membership_events_in_any_order_converge(webhooks_app, database, order) -> None:
    clerk_org = f"org_mem_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, org_event("created", clerk_org, "Members", 500))
    user = f"user_mem_{uuid.uuid4().hex[:8]}"
    events = {
        "created": membership_event("created", clerk_org, user, "org:member", 1_000),
        "updated": membership_event("updated", clerk_org, user, "org:admin", 2_000),
        # A delete carries the membership as it last was (its updated_at), and happens later.
        "deleted": membership_event("deleted", clerk_org, user, "org:admin", 2_000)
        | {"timestamp": 3_000},
    }
    for kind in order:
        assert send_clerk(webhooks_app, events[kind]).status == 200
    [(role, deleted)] = owner_rows(
        database,
        "select m.role::text, m.deleted_at is not null from org_members m"
        " join orgs o on o.id = m.org_id where o.clerk_org_id = %s and m.user_id = %s",
        [clerk_org, user],
    )
    assert deleted is True
    assert role == "admin"
    # Without the delete: the newest role, whatever the order.
    other = f"user_mem_{uuid.uuid4().hex[:8]}"
    for kind in [k for k in order if k != "deleted"]:
        role_of = {"created": "org:member", "updated": "org:admin"}[kind]
        at = {"created": 1_000, "updated": 2_000}[kind]
        send_clerk(webhooks_app, membership_event(kind, clerk_org, other, role_of, at))
    [(role, deleted)] = owner_rows(
        database,
        "select m.role::text, m.deleted_at is not null from org_members m"
        " join orgs o on o.id = m.org_id where o.clerk_org_id = %s and m.user_id = %s",
        [clerk_org, other],
    )
    assert (role, deleted) == ("admin", False)


def test_a_custom_role_maps_to_the_default_and_a_rejoin_revives(webhooks_app, database) -> None:
    clerk_org = f"org_role_{uuid.uuid4().hex[:8]}"
    user = f"user_role_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, membership_event("created", clerk_org, user, "org:coach", 1_000))
    send_clerk(
        webhooks_app,
        membership_event("deleted", clerk_org, user, "org:coach", 1_000) | {"timestamp": 2_000},
    )
    send_clerk(webhooks_app, membership_event("created", clerk_org, user, "org:manager", 5_000))
    [(role, deleted)] = owner_rows(
        database,
        "select m.role::text, m.deleted_at is not null from org_members m"
        " join orgs o on o.id = m.org_id where o.clerk_org_id = %s and m.user_id = %s",
        [clerk_org, user],
    )
    assert (role, deleted) == ("manager", False)


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_user_events_in_any_order_converge(webhooks_app, database, order) -> None:
    clerk_org = f"org_user_{uuid.uuid4().hex[:8]}"
    user = f"user_person_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, membership_event("created", clerk_org, user, "org:member", 500))
    events = {
        "created": user_event("created", user, "Ann", 1_000),
        "updated": user_event("updated", user, "Bea", 2_000),
        "deleted": user_event("deleted", user, "", 3_000),
    }
    for kind in order:
        assert send_clerk(webhooks_app, events[kind]).status == 200
    rows = owner_rows(
        database,
        "select m.display_name, m.email, d.name, d.email from org_members m"
        " join dim_users d using (org_id, user_id) where m.user_id = %s",
        [user],
    )
    assert rows == [(None, None, None, None)]
    # Without the delete: the newest profile, on the membership and in dim_users.
    other = f"user_person_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, membership_event("created", clerk_org, other, "org:member", 500))
    for kind in [k for k in order if k != "deleted"]:
        name = {"created": "Ann", "updated": "Bea"}[kind]
        at = {"created": 1_000, "updated": 2_000}[kind]
        send_clerk(webhooks_app, user_event(kind, other, name, at))
    rows = owner_rows(
        database,
        "select m.display_name, m.email, d.name from org_members m"
        " join dim_users d using (org_id, user_id) where m.user_id = %s",
        [other],
    )
    assert rows == [("Bea Person", "bea@example.com", "Bea Person")]


def test_an_organization_deleted_turns_its_members_away(webhooks_app, call, world: World) -> None:
    clerk_org = f"org_gone_{uuid.uuid4().hex[:8]}"
    user = f"user_gone_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, org_event("created", clerk_org, "Gone", 1_000))
    send_clerk(webhooks_app, membership_event("created", clerk_org, user, "org:admin", 1_000))
    member = User(user, clerk_org, "admin", uuid.uuid4())
    assert call(http_event("GET", "/me", user=member)).status == 200
    send_clerk(webhooks_app, org_event("deleted", clerk_org, "", 2_000))
    assert call(http_event("GET", "/me", user=member)).status in (401, 403)


# ---------------------------------------------------------------------------
# Vapi
# ---------------------------------------------------------------------------


def start_attempt(database: MigratedDatabase, user: User, scenario: uuid.UUID, **cols: Any) -> str:
    names = ["org_id", "clerk_user_id", "scenario_id", "started_at", *cols]
    values = [user.org_id, user.user_id, scenario, datetime.now(UTC) - timedelta(minutes=10)]
    values += list(cols.values())
    [(attempt_id,)] = owner_rows(
        database,
        f"insert into scenario_attempts ({', '.join(names)})"
        f" values ({', '.join(['%s'] * len(names))}) returning id",
        values,
    )
    return str(attempt_id)


def report(call_id: str, *, attempt_id: str | None = None, external: str | None = None) -> dict:
    started = datetime.now(UTC) - timedelta(minutes=5)
    call: dict[str, Any] = {"id": call_id}
    if attempt_id:
        call["assistantOverrides"] = {"metadata": {"attemptId": attempt_id}}
    if external:
        call["customer"] = {"externalId": external}
    t0 = int(started.timestamp() * 1000)
    return {
        "type": "end-of-call-report",
        "timestamp": t0 + 200_000,
        "call": call,
        "endedReason": "customer-ended-call",
        "startedAt": started.isoformat().replace("+00:00", "Z"),
        "endedAt": (started + timedelta(seconds=183)).isoformat().replace("+00:00", "Z"),
        "artifact": {
            "transcript": "AI: Hello\nUser: Hi",
            "messages": [
                {"role": "bot", "message": "Hello", "time": t0, "endTime": t0 + 1_500},
                {"role": "user", "message": "Hi", "time": t0 + 2_000, "endTime": t0 + 2_800},
            ],
            "recordingUrl": "https://storage.vapi.ai/rec.wav",
            "stereoRecordingUrl": "https://storage.vapi.ai/rec-stereo.wav",
        },
        "analysis": {
            "summary": "Good opening.",
            "structuredData": {"score": 82, "rapport": 4},
            "successEvaluation": "true",
        },
    }


def counters(database: MigratedDatabase, user: User, scenario: uuid.UUID) -> tuple:
    [row] = owner_rows(
        database,
        "select (select times_completed from user_scenario_progress"
        "         where org_id = %(org)s and user_id = %(user)s and scenario_id = %(s)s),"
        "       (select count(*) from fact_scenario_attempts"
        "         where org_id = %(org)s and user_id = %(user)s and scenario_id = %(s)s)",
        {"org": user.org_id, "user": user.user_id, "s": scenario},
    )
    return row


def attempt_row(database: MigratedDatabase, attempt_id: str) -> dict[str, Any]:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        cur = conn.execute(
            "select status::text, version, ended_by, duration_seconds, transcript_text, score,"
            " feedback_text, recording_url, recording_urls, call_status, call_ended_reason,"
            " vapi_call_id, kpis, scored_by from scenario_attempts where id = %s",
            [attempt_id],
        )
        names = [c.name for c in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def test_a_report_ends_an_attempt_in_progress_through_the_verdict(
    webhooks_app, database, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    scenario = world.scenarios["a"]
    attempt = start_attempt(database, trainee, scenario)
    before = counters(database, trainee, scenario)
    reply = send_vapi(webhooks_app, report(f"call_{uuid.uuid4().hex}", attempt_id=attempt))
    assert (reply.status, reply.body["outcome"]) == (200, "processed"), reply.body
    row = attempt_row(database, attempt)
    assert row["status"] == "completed"
    assert row["ended_by"] == "system:webhooks"
    assert row["duration_seconds"] == 183
    assert row["transcript_text"] == "AI: Hello\nUser: Hi"
    assert float(row["score"]) == 82
    assert row["feedback_text"] == "Good opening."
    assert row["recording_urls"]["stereo"].endswith("rec-stereo.wav")
    assert row["kpis"] == {"talk_ms": 800, "listen_ms": 1500}
    assert row["call_status"] == "ended"
    assert row["call_ended_reason"] == "customer-ended-call"
    after = counters(database, trainee, scenario)
    assert (after[0] - (before[0] or 0), after[1] - before[1]) == (1, 1)


def test_a_report_after_the_client_submitted_enriches_without_counting_again(
    webhooks_app, call, database, world: World
) -> None:
    trainee = world.users["trainee_a2"]
    scenario = world.scenarios["a"]
    attempt = start_attempt(database, trainee, scenario)
    submitted = call(
        http_event(
            "POST",
            f"/attempts/{attempt}",
            user=trainee,
            query={"action": "submit"},
            body={"transcript_text": "my own words"},
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": attempt},
        )
    )
    assert submitted.status == 200, submitted.body
    before = counters(database, trainee, scenario)
    version = attempt_row(database, attempt)["version"]
    reply = send_vapi(webhooks_app, report(f"call_{uuid.uuid4().hex}", attempt_id=attempt))
    assert (reply.status, reply.body["outcome"]) == (200, "processed")
    row = attempt_row(database, attempt)
    assert row["transcript_text"] == "my own words"  # the trainee's stays
    assert row["recording_url"].endswith("rec.wav")
    assert float(row["score"]) == 82
    assert row["ended_by"] == trainee.user_id
    assert counters(database, trainee, scenario) == before
    assert row["version"] == version + 1  # scored, once


def test_a_report_for_an_unknown_call_is_stored_as_ignored(webhooks_app, database) -> None:
    call_id = f"call_{uuid.uuid4().hex}"
    reply = send_vapi(webhooks_app, report(call_id, attempt_id=str(uuid.uuid4())))
    assert (reply.status, reply.body["outcome"]) == (200, "ignored")
    [(outcome, _attempts, reason)] = stored(database, "vapi", f"{call_id}:end-of-call-report")
    assert outcome == "ignored"
    assert "no attempt" in reason


def test_a_report_finds_its_attempt_by_customer_external_id(webhooks_app, database, world) -> None:
    trainee = world.users["trainee_a3"]
    attempt = start_attempt(database, trainee, world.scenarios["a"])
    reply = send_vapi(webhooks_app, report(f"call_{uuid.uuid4().hex}", external=attempt))
    assert reply.body["outcome"] == "processed"
    assert attempt_row(database, attempt)["status"] == "completed"


def test_a_report_by_call_id_alone_and_a_squatted_call_id(webhooks_app, database, world) -> None:
    trainee = world.users["trainee_a1"]
    call_id = f"call_{uuid.uuid4().hex}"
    attempt = start_attempt(database, trainee, world.scenarios["a"], vapi_call_id=call_id)
    assert send_vapi(webhooks_app, report(call_id)).body["outcome"] == "processed"
    assert attempt_row(database, attempt)["status"] == "completed"
    # A client claimed another's call id: the verified report's metadata decides.
    squatted = f"call_{uuid.uuid4().hex}"
    squatter = start_attempt(
        database, world.users["trainee_a2"], world.scenarios["a"], vapi_call_id=squatted
    )
    real = start_attempt(database, trainee, world.scenarios["a"])
    assert send_vapi(webhooks_app, report(squatted, attempt_id=real)).body["outcome"] == "processed"
    assert attempt_row(database, real)["vapi_call_id"] == squatted
    assert attempt_row(database, squatter)["status"] == "in_progress"
    assert attempt_row(database, squatter)["vapi_call_id"] is None


def test_status_updates_move_forward_only(webhooks_app, database, world) -> None:
    attempt = start_attempt(database, world.users["trainee_a1"], world.scenarios["a"])
    call_id = f"call_{uuid.uuid4().hex}"
    version = attempt_row(database, attempt)["version"]

    def status(value: str, at: int) -> Reply:
        return send_vapi(
            webhooks_app,
            {
                "type": "status-update",
                "status": value,
                "timestamp": at,
                "call": {
                    "id": call_id,
                    "assistantOverrides": {"metadata": {"attempt_id": attempt}},
                },
                **({"endedReason": "assistant-ended-call"} if value == "ended" else {}),
            },
        )

    assert status("ended", 3).body["outcome"] == "processed"
    late = status("in-progress", 2)
    assert (late.status, late.body["outcome"]) == (200, "ignored")
    row = attempt_row(database, attempt)
    assert row["call_status"] == "ended"
    assert row["status"] == "in_progress"
    assert row["version"] == version


# ---------------------------------------------------------------------------
# Once: duplicates, sequential and concurrent
# ---------------------------------------------------------------------------


def test_the_same_report_ten_times_in_a_row_and_at_once(webhooks_app, database, world) -> None:
    trainee = world.users["trainee_a3"]
    scenario = world.scenarios["builtin"]
    for concurrent in (False, True):
        attempt = start_attempt(database, trainee, scenario)
        call_id = f"call_{uuid.uuid4().hex}"
        body = signing.body_text({"message": report(call_id, attempt_id=attempt)})
        before = counters(database, trainee, scenario)
        replies: list[Reply] = []

        def deliver(body: str = body, replies: list[Reply] = replies) -> None:
            replies.append(
                post(webhooks_app, "/webhooks/vapi", body, signing.vapi_secret_headers())
            )

        if concurrent:
            threads = [threading.Thread(target=deliver) for _ in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        else:
            for _ in range(10):
                deliver()
        assert sorted(r.status for r in replies) == [200] * 10
        outcomes = sorted(r.body["outcome"] for r in replies)
        assert outcomes == ["processed"] + ["repeat"] * 9, outcomes
        rows = stored(database, "vapi", f"{call_id}:end-of-call-report")
        assert [(o, a) for o, a, _ in rows] == [("processed", 1)]
        after = counters(database, trainee, scenario)
        assert (after[0] - (before[0] or 0), after[1] - before[1]) == (1, 1)


@pytest.mark.parametrize("concurrent", [False, True], ids=["in-a-row", "at-once"])
def test_the_same_clerk_delivery_ten_times(webhooks_app, database, concurrent: bool) -> None:
    clerk_org = f"org_dup_{uuid.uuid4().hex[:8]}"
    user = f"user_dup_{uuid.uuid4().hex[:8]}"
    send_clerk(webhooks_app, org_event("created", clerk_org, "Once", 1_000))
    body = signing.body_text(membership_event("created", clerk_org, user, "org:member", 2_000))
    msg_id = "msg_dup_" + user
    headers = signing.clerk_headers(msg_id, body, int(time.time()))
    replies: list[Reply] = []

    def deliver() -> None:
        replies.append(post(webhooks_app, "/webhooks/clerk", body, headers))

    if concurrent:
        threads = [threading.Thread(target=deliver) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    else:
        for _ in range(10):
            deliver()
    assert sorted(r.body["outcome"] for r in replies) == ["processed"] + ["repeat"] * 9
    assert [(o, a) for o, a, _ in stored(database, "clerk", msg_id)] == [("processed", 1)]
    members = owner_rows(
        database,
        "select m.role::text, m.clerk_updated_ms from org_members m join orgs o on o.id = m.org_id"
        " where o.clerk_org_id = %s and m.user_id = %s",
        [clerk_org, user],
    )
    assert members == [("trainee", 2_000)]


# ---------------------------------------------------------------------------
# A failure is kept and retried once
# ---------------------------------------------------------------------------


def test_a_failed_delivery_is_kept_and_the_retry_job_processes_it_once(
    webhooks_app, webhook_retry_app, database, world, monkeypatch
) -> None:
    from practice.webhooks import vapi

    trainee = world.users["trainee_a1"]
    scenario = world.scenarios["a"]
    attempt = start_attempt(database, trainee, scenario)
    call_id = f"call_{uuid.uuid4().hex}"
    real_apply = vapi.apply

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(vapi, "apply", broken)
    before = counters(database, trainee, scenario)
    reply = send_vapi(webhooks_app, report(call_id, attempt_id=attempt))
    assert (reply.status, reply.body["outcome"]) == (202, "received")
    [(outcome, attempts, _)] = stored(database, "vapi", f"{call_id}:end-of-call-report")
    assert (outcome, attempts) == ("failed", 1)
    assert attempt_row(database, attempt)["status"] == "in_progress"
    # A repeat from the sender changes nothing; the retry schedule does the work.
    assert send_vapi(webhooks_app, report(call_id, attempt_id=attempt)).body["outcome"] == "repeat"
    monkeypatch.setattr(vapi, "apply", real_apply)
    owner_rows(
        database,
        "update webhook_events set next_attempt_at = now() - interval '1 second'"
        " where source = 'vapi' and event_id = %s",
        [f"{call_id}:end-of-call-report"],
    )
    from dev.invoke import LambdaContext

    for _ in range(2):
        result = webhook_retry_app.handler({"job": "retry-webhooks"}, LambdaContext())
        assert result["job"] == "retry-webhooks"
    [(outcome, attempts, _)] = stored(database, "vapi", f"{call_id}:end-of-call-report")
    assert (outcome, attempts) == ("processed", 2)
    assert attempt_row(database, attempt)["status"] == "completed"
    after = counters(database, trainee, scenario)
    assert (after[0] - (before[0] or 0), after[1] - before[1]) == (1, 1)


# ---------------------------------------------------------------------------
# The delivery log, for admins
# ---------------------------------------------------------------------------


def test_admins_list_their_orgs_deliveries_and_replay_one(
    webhooks_app, database, world: World
) -> None:
    admin, trainee, other_admin = (
        world.users["admin_a"],
        world.users["trainee_a1"],
        world.users["admin_b"],
    )
    attempt = start_attempt(database, trainee, world.scenarios["a"])
    call_id = f"call_{uuid.uuid4().hex}"
    delivered = send_vapi(webhooks_app, report(call_id, attempt_id=attempt))
    event_id = delivered.body["event_id"]

    listed = call_handler(webhooks_app, http_event("GET", "/webhooks/events", user=admin))
    assert listed.status == 200, listed.body
    assert event_id in [item["id"] for item in listed.body["items"]]
    theirs = call_handler(webhooks_app, http_event("GET", "/webhooks/events", user=other_admin))
    assert event_id not in [item["id"] for item in theirs.body["items"]]
    refused = call_handler(webhooks_app, http_event("GET", "/webhooks/events", user=trainee))
    assert refused.status == 403

    def replay(user: User) -> Reply:
        return call_handler(
            webhooks_app,
            http_event(
                "POST",
                f"/webhooks/events/{event_id}/replay",
                user=user,
                route="/webhooks/events/{eventId}/replay",
                path_parameters={"eventId": str(event_id)},
            ),
        )

    again = replay(admin)
    assert (again.status, again.body["outcome"]) == (200, "processed")
    assert replay(other_admin).status == 404
    [(outcome, attempts, _)] = stored(database, "vapi", f"{call_id}:end-of-call-report")
    assert (outcome, attempts) == ("processed", 1)


def test_python_m_dev_webhooks_lists_and_replays(webhooks_app, database) -> None:
    from tests.support import run_dev

    reply = send_vapi(
        webhooks_app, report(f"call_{uuid.uuid4().hex}", attempt_id=str(uuid.uuid4()))
    )
    event_id = reply.body["event_id"]
    listed = run_dev("webhooks", "--database-url", database.app_url)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert any(line.split("\t")[0] == str(event_id) for line in listed.stdout.splitlines())
    replayed = run_dev("webhooks", "--replay", str(event_id), "--database-url", database.app_url)
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert '"outcome": "ignored"' in replayed.stdout


def test_unreadable_secrets_or_database_answer_503(webhooks_app, monkeypatch) -> None:
    from practice.core.errors import Unavailable

    def unreadable(*_args: Any, **_kwargs: Any) -> Any:
        raise Unavailable("down", retry_after=5)

    service = webhooks_app.webhooks
    monkeypatch.setattr(service.deliveries, "store", unreadable)
    assert send_clerk(webhooks_app, org_event("updated", "org_503", "x", 1)).status == 503
    monkeypatch.setattr(service.secrets, "current", unreadable)
    message = {"type": "status-update", "status": "ringing", "call": {"id": "call_503"}}
    assert send_vapi(webhooks_app, message).status == 503


def test_a_stuck_delivery_is_processed_and_one_failing_every_retry_is_left_for_a_replay(
    webhooks_app, webhook_retry_app, database, world, monkeypatch
) -> None:
    from dev.invoke import LambdaContext
    from practice.webhooks import vapi

    # Stuck: stored, never processed (the function died between the two steps).
    attempt = start_attempt(database, world.users["trainee_a2"], world.scenarios["a"])
    stuck_call = f"call_{uuid.uuid4().hex}"
    payload = signing.body_text({"message": report(stuck_call, attempt_id=attempt)})
    owner_rows(
        database,
        "insert into webhook_events (source, event_id, event_type, subject, payload,"
        " next_attempt_at) values ('vapi', %s, 'end-of-call-report', %s, %s::jsonb,"
        " now() - interval '1 second')",
        [f"{stuck_call}:end-of-call-report", stuck_call, payload],
    )
    # Failing for good: its last allowed attempt fails now.
    doomed_call = f"call_{uuid.uuid4().hex}"
    limit = webhooks_app.settings.webhook_retry_max_attempts
    owner_rows(
        database,
        "insert into webhook_events (source, event_id, event_type, subject, payload, outcome,"
        " attempts, next_attempt_at) values ('vapi', %s, 'end-of-call-report', %s, %s::jsonb,"
        " 'failed', %s, now() - interval '1 second')",
        [
            f"{doomed_call}:end-of-call-report",
            doomed_call,
            signing.body_text({"message": report(doomed_call, attempt_id=str(uuid.uuid4()))}),
            limit - 1,
        ],
    )
    real_apply = vapi.apply

    def fails_for_doomed(conn: Any, payload: dict, caller: str) -> Any:
        if payload["message"]["call"]["id"] == doomed_call:
            raise RuntimeError("still failing")
        return real_apply(conn, payload, caller)

    monkeypatch.setattr(vapi, "apply", fails_for_doomed)
    result = webhook_retry_app.handler({"job": "retry-webhooks"}, LambdaContext())["result"]
    assert result["failed"] >= 1
    assert result["exhausted"] >= 1
    [(outcome, attempts, _)] = stored(database, "vapi", f"{stuck_call}:end-of-call-report")
    assert (outcome, attempts) == ("processed", 1)
    assert attempt_row(database, attempt)["status"] == "completed"
    [(outcome, attempts, next_at)] = owner_rows(
        database,
        "select outcome, attempts, next_attempt_at from webhook_events where event_id = %s",
        [f"{doomed_call}:end-of-call-report"],
    )
    assert (outcome, attempts, next_at) == ("failed", limit, None)


def test_make_dev_prints_the_local_secrets_and_a_signed_example() -> None:
    from dev.stack import webhook_lines

    text = "\n".join(webhook_lines("http://127.0.0.1:3000"))
    assert signing.CLERK_SECRET in text
    assert signing.CLERK_SECRET.startswith("whsec_")
    assert f"secret {signing.VAPI_SECRET}, mode {signing.VAPI_AUTH}" in text
    assert "curl -H 'x-vapi-secret: " in text
    assert "python -m dev.signing send-clerk http://127.0.0.1:3000/webhooks/clerk" in text

"""Every route is declared once, and both its reading and its document come from
that declaration: what a route reads is in its document, and what the
document does not allow is refused rather than ignored. A request is
fingerprinted as its route read it, so the same request spelled differently
replays under its Idempotency-Key and two that act differently never share one.
"""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

import pytest

from practice.web.contract import build_contract
from practice.web.params import wire
from tests.e2e.test_attempts import attempt_event, start
from tests.support import World, http_event

FUNCTIONS = (
    "attempts_app",
    "batch_app",
    "exports_app",
    "webhooks_app",
    "refresh_app",
    "reports_app",
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_declaration_is_documented_as_it_is_read(
    function: str, request: pytest.FixtureRequest
) -> None:
    module: ModuleType = request.getfixturevalue(function)
    document = build_contract(module.api, title="probe")
    documented = {
        (method.upper(), path): entry
        for path, entries in document["paths"].items()
        for method, entry in entries.items()
    }
    assert len(documented) == len(module.api.operations)
    for operation in module.api.operations:
        entry = documented[(operation.method, operation.path)]
        assert entry["operationId"] == operation.name
        read = (
            {(location, name) for _field, location, name in wire(operation.params)}
            if (operation.params)
            else set()
        )
        if operation.idempotent:
            read.add(("header", "Idempotency-Key"))
        assert {(p["in"], p["name"]) for p in entry.get("parameters", ())} == read
        has_body = operation.body is not None or operation.raw_body is not None
        assert ("requestBody" in entry) == has_body
        for reply in operation.replies:
            answer = entry["responses"][str(reply.status)]
            assert ("application/json" in answer.get("content", {})) == (reply.model is not None)
            assert {h.name for h in reply.headers} <= set(answer.get("headers", {}))
        if operation.action is not None:
            assert entry["x-seed-form"].endswith(f"?action={operation.action}")


def _save(attempt: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {"answers": {"q": 1}, "expected_version": attempt["version"]} | headers


@pytest.mark.parametrize(
    ("method", "action", "body", "headers", "query", "status", "field"),
    [
        ("GET", "state", None, {}, {"verbose": "1"}, 422, "query.verbose"),
        ("GET", "stats", None, {}, {"type": "stats", "kind": "x"}, 422, "query.kind"),
        ("GET", "state", None, {"Idempotency-Key": "k"}, {}, 422, "header.Idempotency-Key"),
        ("PATCH", "save", "save", {"Idempotency-Key": "k"}, {}, 422, "header.Idempotency-Key"),
        (
            "POST",
            "upload",
            {"content_type": "audio/webm", "size_bytes": 1},
            {"Idempotency-Key": "k"},
            {},
            422,
            "header.Idempotency-Key",
        ),
        ("GET", "info", {"surprise": True}, {}, {}, 422, "body"),
    ],
)
def test_what_a_route_does_not_read_is_refused_naming_it(
    call,
    world: World,
    method: str,
    action: str,
    body: Any,
    headers: dict[str, str],
    query: dict[str, str],
    status: int,
    field: str,
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    sent = _save(attempt) if body == "save" else body
    event = attempt_event(
        method, attempt["id"], trainee, action, sent, headers=headers, query=query
    )
    reply = call(event)
    assert reply.status == status, reply.body
    assert [e["field"] for e in reply.problem["errors"]] == [field]


def test_a_repeated_query_parameter_is_refused_rather_than_one_winning(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    event = attempt_event("GET", attempt["id"], trainee, None)
    event["rawQueryString"] = "action=state&action=info"
    event["queryStringParameters"] = {"action": "state,info"}
    reply = call(event)
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "query.action"


def test_a_body_that_is_not_json_is_415_and_duplicate_members_400(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    event = attempt_event("PATCH", attempt["id"], trainee, "save", _save(attempt))
    event["headers"]["content-type"] = "text/plain"
    assert call(event).status == 415
    twice = '{"expected_version": 1, "expected_version": 2, "answers": {}}'
    reply = call(attempt_event("PATCH", attempt["id"], trainee, "save", twice))
    assert reply.status == 400
    assert "expected_version" in reply.problem["detail"]


def test_the_seed_form_and_the_resource_url_are_one_operation(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    seed = call(attempt_event("GET", attempt["id"], trainee, "info"))
    own = http_event(
        "GET",
        f"/attempts/{attempt['id']}/info",
        user=trainee,
        route="/attempts/{attemptId}/info",
        path_parameters={"attemptId": attempt["id"]},
    )
    assert (seed.status, seed.body) == (200, call(own).body)


def _submit(attempt_id: str, user: Any, body: Any, key: str, *, seed: bool) -> dict[str, Any]:
    headers = {"Idempotency-Key": key}
    if seed:
        return attempt_event("POST", attempt_id, user, "submit", body, headers=headers)
    return http_event(
        "POST",
        f"/attempts/{attempt_id}/submit",
        user=user,
        body=body,
        headers=headers,
        route="/attempts/{attemptId}/submit",
        path_parameters={"attemptId": attempt_id},
    )


def test_the_same_request_spelled_differently_replays_under_its_key(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"spelled-{uuid.uuid4()}"
    first = call(_submit(attempt["id"], trainee, {"answers": {"a": 1, "b": 2}}, key, seed=True))
    assert first.status == 200
    # Members in another order, the id in capitals, the resource URL: the same request.
    again = _submit(
        attempt["id"].upper(), trainee, '{"answers": {"b": 2, "a": 1}}', key, seed=False
    )
    replayed = call(again)
    assert (replayed.status, replayed.headers.get("idempotent-replayed")) == (200, "true")
    assert replayed.body == first.body


def test_two_requests_that_act_differently_never_share_a_key(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"acts-{uuid.uuid4()}"
    assert call(_submit(attempt["id"], trainee, {}, key, seed=True)).status == 200
    # An explicit status is not the default's spelling: on an ended attempt it is
    # compared with what the attempt holds, so it is another request.
    other = call(_submit(attempt["id"], trainee, {"status": "completed"}, key, seed=True))
    assert other.status == 422
    assert other.problem["errors"][0]["field"] == "header.Idempotency-Key"


def test_the_documents_are_served_as_built(call, attempts_app) -> None:
    reply = call(http_event("GET", "/openapi.json"))
    assert reply.status == 200
    assert json.loads(json.dumps(reply.body)) == build_contract(
        attempts_app.api, title="Practice attempts API"
    )

"""Chat sessions and their scenario progress through API Gateway v2 events:
create, list (keyset), read; the progress's shape (422) and contradictions
(409), its timestamps, clearing, the ETag and a stale If-Match (412) from a
second device, and the role matrix on every route."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from tests.conftest import MigratedDatabase
from tests.support import User, World, build_world, http_event

SESSION = "/chat-sessions/{sessionId}"
PROGRESS = SESSION + "/scenario-progress"


@pytest.fixture(scope="module")
def own(database: MigratedDatabase) -> World:
    return build_world(database.admin_url)


def document(scenario_id: str = "research-analysis-2024", **changes: Any) -> dict[str, Any]:
    """Seed 003's example ScenarioProgress, two steps."""
    doc = {
        "scenario": {
            "id": scenario_id,
            "title": "Research Analysis",
            "description": "Comprehensive research and analysis workflow",
            "steps": [
                {
                    "title": "Initial Research",
                    "description": "Gather preliminary information",
                    "actions": [
                        {
                            "label": "Search Web",
                            "prompt": "Search for recent information about...",
                            "agentName": "Research Agent",
                            "type": "research",
                        }
                    ],
                },
                {
                    "title": "Synthesis",
                    "description": "Sum up",
                    "actions": [{"label": "Write", "prompt": "Summarise", "type": "chat"}],
                },
            ],
        },
        "currentStep": 1,
        "completedSteps": [0],
        "triggeredActions": {"step_0_action_0": True, "step_1_action_0": False},
        "startedAt": "2024-01-15T10:30:00.000Z",
        "lastUpdatedAt": "2024-01-15T10:45:00.000Z",
    }
    doc.update(changes)
    return doc


def create(call, user: User, title: str | None = "chat") -> dict[str, Any]:
    reply = call(http_event("POST", "/chat-sessions", user=user, body={"title": title}))
    assert reply.status == 201, reply.body
    assert reply.headers["location"] == f"/chat-sessions/{reply.body['id']}"
    return reply.body


def on(method: str, session: Any, user: User, *, progress: bool = True, **kw: Any):
    suffix = "/scenario-progress" if progress else ""
    return http_event(
        method,
        f"/chat-sessions/{session}{suffix}",
        user=user,
        route=PROGRESS if progress else SESSION,
        path_parameters={"sessionId": str(session)},
        **kw,
    )


def put(call, session: Any, user: User, doc: dict | None = None, completed: bool = False,
        scenario_id: str | None = None, **headers: str):  # fmt: skip
    doc = doc or document()
    body = {
        "scenario_progress": doc,
        "scenario_id": scenario_id or doc["scenario"]["id"],
        "completed": completed,
    }
    return call(on("PUT", session, user, body=body, headers=headers or None))


def test_create_list_and_read_sessions(call, own: World) -> None:
    trainee = own.users["trainee_a2"]
    made = [create(call, trainee, f"chat {i}")["id"] for i in range(3)]
    seen, cursor = [], None
    for _ in range(5):
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        reply = call(http_event("GET", "/chat-sessions", user=trainee, query=query))
        assert reply.status == 200, reply.body
        seen += [s["id"] for s in reply.body["sessions"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    one = call(on("GET", made[0], trainee, progress=False))
    assert one.status == 200
    assert one.body["title"] == "chat 0"
    assert one.headers["etag"] == '"1"'
    # Another's list holds none of them.
    other = call(http_event("GET", "/chat-sessions", user=own.users["trainee_a1"]))
    assert not set(made) & {s["id"] for s in other.body["sessions"]}


def test_progress_round_trip_with_seed_003_timestamps(call, own: World) -> None:
    trainee = own.users["trainee_a1"]
    session = create(call, trainee)["id"]
    empty = call(on("GET", session, trainee))
    assert empty.status == 200
    assert empty.body["scenario_progress"] is None
    assert empty.headers["etag"] == '"1"'

    first = put(call, session, trainee)
    assert first.status == 200, first.body
    assert first.headers["etag"] == '"2"'
    started = first.body["scenario_started_at"]
    assert started is not None
    assert first.body["scenario_completed_at"] is None

    again = put(call, session, trainee, completed=True)
    assert again.body["scenario_started_at"] == started  # same scenario: kept
    completed = again.body["scenario_completed_at"]
    assert completed is not None
    read = call(on("GET", session, trainee))
    assert read.body["scenario_progress"] == document()
    assert read.body["scenario_id"] == "research-analysis-2024"
    assert read.body["scenario_completed_at"] == completed

    other = put(call, session, trainee, document("negotiation-101"))
    assert other.body["scenario_id"] == "negotiation-101"
    assert other.body["scenario_completed_at"] is None  # a new scenario clears it
    assert other.body["scenario_started_at"] >= started


def test_clearing_is_204_and_idempotent(call, own: World) -> None:
    trainee = own.users["trainee_a1"]
    session = create(call, trainee)["id"]
    put(call, session, trainee)
    cleared = call(on("DELETE", session, trainee))
    assert cleared.status == 204
    assert cleared.headers["etag"] == '"3"'
    again = call(on("DELETE", session, trainee))
    assert again.status == 204
    assert again.headers["etag"] == '"3"'  # nothing changed
    read = call(on("GET", session, trainee)).body
    assert read["scenario_progress"] is None
    assert read["scenario_id"] is None
    assert read["scenario_started_at"] is None


def test_a_stale_if_match_from_a_second_device_is_412(call, own: World) -> None:
    trainee = own.users["trainee_a3"]
    session = create(call, trainee)["id"]
    etag = call(on("GET", session, trainee)).headers["etag"]
    # Both devices read version 1; the phone writes first.
    phone = put(call, session, trainee, **{"If-Match": etag})
    assert phone.status == 200, phone.body
    laptop = put(call, session, trainee, document(currentStep=0), **{"If-Match": etag})
    assert laptop.status == 412
    assert laptop.problem["current_version"] == 2
    assert call(on("GET", session, trainee)).body["scenario_progress"]["currentStep"] == 1
    # On the current version it goes through.
    retry = put(call, session, trainee, document(currentStep=0), **{"If-Match": '"2"'})
    assert retry.status == 200
    stale_clear = call(on("DELETE", session, trainee, headers={"If-Match": '"2"'}))
    assert stale_clear.status == 412


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currentStep": 2}, "body.scenario_progress.currentStep"),
        ({"completedSteps": [0, 5]}, "body.scenario_progress.completedSteps"),
        ({"completedSteps": [0, 0]}, "body.scenario_progress.completedSteps"),
        (
            {"triggeredActions": {"step_0_action_1": True}},
            "body.scenario_progress.triggeredActions.step_0_action_1",
        ),
        (
            {"triggeredActions": {"step_3_action_0": True}},
            "body.scenario_progress.triggeredActions.step_3_action_0",
        ),
    ],
)
def test_progress_that_contradicts_its_scenario_is_409(
    call, own: World, changes: dict, field: str
) -> None:
    trainee = own.users["trainee_a1"]
    session = create(call, trainee)["id"]
    reply = put(call, session, trainee, document(**changes))
    assert reply.status == 409, reply.body
    assert field in [e["field"] for e in reply.problem["errors"]]
    mismatch = put(call, session, trainee, scenario_id="another")
    assert mismatch.status == 409
    assert call(on("GET", session, trainee)).headers["etag"] == '"1"'


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d.pop("scenario"),
        lambda d: d.update(currentStep=-1),
        lambda d: d.update(currentStep="1"),
        lambda d: d.update(triggeredActions={"step_a_action_0": True}),
        lambda d: d.update(startedAt="yesterday"),
        lambda d: d.update(startedAt="2024-01-15T10:30:00"),  # no offset
        lambda d: d["scenario"].update(steps=[]),
        lambda d: d["scenario"]["steps"][0].pop("actions"),
        lambda d: d["scenario"]["steps"][0]["actions"][0].update(type="email"),
    ],
)
def test_progress_of_the_wrong_shape_is_422(call, own: World, breaks) -> None:
    trainee = own.users["trainee_a1"]
    session = create(call, trainee)["id"]
    doc = copy.deepcopy(document())
    breaks(doc)
    body = {"scenario_progress": doc, "scenario_id": "research-analysis-2024"}
    reply = call(on("PUT", session, trainee, body=body))
    assert reply.status == 422, reply.body


def test_progress_over_the_size_limit_is_413(call, own: World) -> None:
    trainee = own.users["trainee_a1"]
    session = create(call, trainee)["id"]
    doc = document()
    doc["scenario"]["steps"] = [
        {"title": f"s{i}", "description": "x" * 8000, "actions": []} for i in range(10)
    ]
    doc["currentStep"], doc["triggeredActions"] = 0, {}
    reply = put(call, session, trainee, doc)
    assert reply.status == 413


# -- who may do what -----------------------------------------------------------

# (caller, expected status of: read session, read progress, write progress)
MATRIX = [
    ("trainee_a1", 200, 200, 200),  # the owner
    ("manager_a", 200, 200, 403),  # their manager reads
    ("admin_a", 200, 200, 403),  # the org's admin reads
    ("trainee_a2", 404, 404, 404),  # a teammate
    ("manager_a2", 404, 404, 404),  # another team's manager
    ("admin_b", 404, 404, 404),  # another org
]


@pytest.mark.parametrize(("caller", "session_status", "read", "write"), MATRIX)
def test_the_role_matrix(call, own: World, caller, session_status, read, write) -> None:
    owner = own.users["trainee_a1"]
    session = create(call, owner)["id"]
    user = own.users[caller]
    assert call(on("GET", session, user, progress=False)).status == session_status
    assert call(on("GET", session, user)).status == read
    assert put(call, session, user).status == write
    assert call(on("DELETE", session, user)).status == (204 if write == 200 else write)
    # Everyone creates and lists only their own.
    create(call, user)
    listed = call(http_event("GET", "/chat-sessions", user=user)).body["sessions"]
    assert {s["user_id"] for s in listed} == {user.user_id}


def test_an_unknown_session_is_404_everywhere(call, own: World) -> None:
    trainee, unknown = own.users["trainee_a1"], uuid.uuid4()
    assert call(on("GET", unknown, trainee, progress=False)).status == 404
    assert call(on("GET", unknown, trainee)).status == 404
    assert put(call, unknown, trainee).status == 404
    assert call(on("DELETE", unknown, trainee)).status == 404

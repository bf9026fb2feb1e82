"""The batch function, every operation and its per-item outcomes, through API
Gateway v2 events into `functions.batch.app.handler` against the real database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from practice.batch.models import MAX_BATCH_ITEMS
from practice.core.errors import Unavailable
from practice.web.contract import build_contract
from tests.conftest import MigratedDatabase
from tests.e2e.conftest import Reply
from tests.support import User, World, http_event


def start(call, user: User, scenario: uuid.UUID) -> str:
    reply = call(http_event("POST", "/attempts", user=user, body={"scenario_id": str(scenario)}))
    assert reply.status == 201, reply.body
    return reply.body["id"]


def batch_event(user: User, operation: str, data: Any, **kw: Any) -> dict[str, Any]:
    return http_event(
        "POST", "/attempts/batch", user=user, body={"operation": operation, "data": data}, **kw
    )


def owner_rows(database: MigratedDatabase, sql: str, params: list[Any]) -> list[tuple]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(sql, params).fetchall()


def versions(database: MigratedDatabase, ids: list[str]) -> dict[str, tuple]:
    rows = owner_rows(
        database,
        "select id::text, version, answers, status::text from scenario_attempts"
        " where id = any(%s::uuid[])",
        [ids],
    )
    return {row[0]: row[1:] for row in rows}


def by_id(reply: Reply) -> dict[str, dict[str, Any]]:
    return {r["attempt_id"]: r for r in reply.body["results"]}


@pytest.fixture
def scenario(database: MigratedDatabase, world: World) -> uuid.UUID:
    """A scenario of org A of this test alone, so its counters move only here."""
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        return conn.execute(
            "insert into scenarios (org_id, title, description, role, difficulty,"
            " instructions, context, visibility) values (%s, %s, 'd', 'sales', 'beginner',"
            " 'i', 'c', 'org') returning id",
            [world.orgs["a"], f"Batch {uuid.uuid4().hex[:8]}"],
        ).fetchone()[0]


# -- batch_save ----------------------------------------------------------------


def test_batch_save_judges_each_item_on_its_own(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    """A manager's batch over their own attempts, a report's, another org's, an
    unknown id, a stale version and an ended attempt: each item its own status,
    and nothing outside the caller's rights is written."""
    manager, report = world.users["manager_a"], world.users["trainee_a1"]
    own, own_stale, own_ended = (start(call, manager, world.scenarios["a"]) for _ in range(3))
    reports = start(call, report, world.scenarios["a"])
    foreign = start(call, world.users["trainee_b1"], world.scenarios["b"])
    unknown = str(uuid.uuid4())
    ended = call_batch(batch_event(manager, "batch_submit", [own_ended]))
    assert ended.body["results"][0]["status"] == "submitted"
    before = versions(database, [reports, foreign, own_ended])

    data = [
        {"attempt_id": own, "answers": {"q1": "yes"}, "auto_save_data": {"s": 1},
         "expected_version": 1},
        {"attempt_id": own_stale, "answers": {"q1": "late"}, "expected_version": 7},
        {"attempt_id": reports, "answers": {"q1": "not mine"}, "expected_version": 1},
        {"attempt_id": foreign, "answers": {"q1": "not my org"}, "expected_version": 1},
        {"attempt_id": unknown, "answers": {}, "expected_version": 1},
        {"attempt_id": own_ended, "answers": {"q1": "after the end"}, "expected_version": 2},
    ]  # fmt: skip
    reply = call_batch(batch_event(manager, "batch_save", data))
    assert reply.status == 200, reply.body
    assert reply.body["operation"] == "batch_save"
    assert [r["attempt_id"] for r in reply.body["results"]] == [d["attempt_id"] for d in data]
    results = by_id(reply)
    assert (results[own]["status"], results[own]["version"]) == ("saved", 2)
    assert (results[own_stale]["status"], results[own_stale]["current_version"]) == ("conflict", 1)
    assert results[reports]["status"] == "forbidden"
    assert results[foreign]["status"] == "not_found"
    assert results[unknown]["status"] == "not_found"
    assert (results[own_ended]["status"], results[own_ended]["current_version"]) == (
        "not_in_progress",
        2,
    )
    assert reply.body["summary"] == {"succeeded": 1, "failed": 5}
    # In the database: the caller's one valid save, and nothing else.
    after = versions(database, [own, own_stale, reports, foreign, own_ended])
    assert after[own] == (2, {"q1": "yes"}, "in_progress")
    assert after[own_stale] == (1, {}, "in_progress")
    assert {k: after[k] for k in before} == before


def test_a_trainee_cannot_even_see_a_teammates_attempt(call, call_batch, world: World) -> None:
    mine = start(call, world.users["trainee_a1"], world.scenarios["a"])
    teammates = start(call, world.users["trainee_a2"], world.scenarios["a"])
    data = [
        {"attempt_id": a, "expected_version": 1, "answers": {"x": 1}} for a in (mine, teammates)
    ]
    reply = call_batch(batch_event(world.users["trainee_a1"], "batch_save", data))
    assert [r["status"] for r in reply.body["results"]] == ["saved", "not_found"]


def test_concurrent_batch_saves_over_the_same_attempts_lose_no_update(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    """20 batches over the same 10 attempts at version 1: per attempt exactly one
    save wins, the others learn the winner's version; final versions are 2."""
    trainee = world.users["trainee_a1"]
    ids = [start(call, trainee, world.scenarios["a"]) for _ in range(10)]
    replies: dict[int, Reply] = {}
    barrier = threading.Barrier(20)

    def save(n: int) -> None:
        data = [{"attempt_id": a, "answers": {"by": n}, "expected_version": 1} for a in ids]
        event = batch_event(trainee, "batch_save", data)
        barrier.wait()
        replies[n] = call_batch(event)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in replies.values()] == [200] * 20
    final = versions(database, ids)
    for attempt_id in ids:
        outcomes = {n: by_id(r)[attempt_id] for n, r in replies.items()}
        winners = [n for n, o in outcomes.items() if o["status"] == "saved"]
        assert len(winners) == 1, attempt_id
        losers = [o for n, o in outcomes.items() if n not in winners]
        assert all((o["status"], o["current_version"]) == ("conflict", 2) for o in losers)
        # No lost update: the stored draft is the winner's, at version 2.
        assert final[attempt_id][:2] == (2, {"by": winners[0]})


# -- multiple_states ---------------------------------------------------------------


def test_multiple_states_answers_in_request_order_with_not_found_entries(
    call, call_batch, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    first, second = (start(call, trainee, world.scenarios["a"]) for _ in range(2))
    foreign = start(call, world.users["trainee_b1"], world.scenarios["b"])
    data = [second, foreign, first, second]
    reply = call_batch(batch_event(trainee, "multiple_states", data))
    assert reply.status == 200
    assert [r["attempt_id"] for r in reply.body["results"]] == data
    assert [r["status"] for r in reply.body["results"]] == [
        "found",
        "not_found",
        "found",
        "found",
    ]
    assert reply.body["results"][0]["state"]["version"] == 1
    assert reply.body["results"][1]["state"] is None
    assert reply.body["summary"] == {"succeeded": 3, "failed": 1}


# -- batch_activity ------------------------------------------------------------


def test_batch_activity_logs_per_attempt_under_the_single_rule(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    manager, report = world.users["manager_a"], world.users["trainee_a1"]
    own = start(call, manager, world.scenarios["a"])
    reports = start(call, report, world.scenarios["a"])
    ended = start(call, manager, world.scenarios["a"])
    call_batch(batch_event(manager, "batch_submit", [ended]))
    events = [{"event_type": "call_started"}, {"event_type": "hint_viewed", "payload": {"n": 1}}]
    data = [
        {"attempt_id": own, "events": events},
        {"attempt_id": reports, "events": events},
        {"attempt_id": ended, "events": events},
        {"attempt_id": str(uuid.uuid4()), "events": events},
    ]
    reply = call_batch(batch_event(manager, "batch_activity", data))
    assert reply.status == 200
    assert [(r["status"], r["inserted"]) for r in reply.body["results"]] == [
        ("logged", 2),
        ("forbidden", 0),
        ("not_in_progress", 0),
        ("not_found", 0),
    ]
    counts = owner_rows(
        database,
        "select attempt_id::text, count(*) from attempt_activity"
        " where attempt_id = any(%s::uuid[]) group by 1",
        [[own, reports, ended]],
    )
    assert dict(counts) == {own: 2}
    touched = owner_rows(
        database, "select last_activity_at is not null from scenario_attempts where id = %s", [own]
    )
    assert touched == [(True,)]


def test_batch_activity_refuses_an_unknown_event_type_naming_it(
    call, call_batch, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    data = [{"attempt_id": attempt, "events": [{"event_type": "teleported"}]}]
    reply = call_batch(batch_event(trainee, "batch_activity", data))
    assert reply.status == 422
    assert "body.data.0.events.0.event_type" in [e["field"] for e in reply.problem["errors"]]


# -- validate ------------------------------------------------------------------


def test_validate_says_what_a_submit_would_do_and_warns_of_what_to_settle(
    call, call_batch, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    ready, empty, recording, unconfirmed, ended = (
        start(call, trainee, world.scenarios["a"]) for _ in range(5)
    )
    saves = [
        {"attempt_id": a, "answers": {"q1": "yes"}, "expected_version": 1}
        for a in (ready, recording, unconfirmed)
    ]
    assert call_batch(batch_event(trainee, "batch_save", saves)).body["summary"]["failed"] == 0
    logs = [
        {"attempt_id": recording, "events": [{"event_type": "recording_started"}]},
        {
            "attempt_id": unconfirmed,
            "events": [{"event_type": "recording_started"}, {"event_type": "recording_stopped"}],
        },
    ]
    assert call_batch(batch_event(trainee, "batch_activity", logs)).status == 200
    call_batch(batch_event(trainee, "batch_submit", [ended]))
    unknown = str(uuid.uuid4())
    data = [ready, empty, recording, unconfirmed, ended, unknown]
    reply = call_batch(batch_event(trainee, "validate", data))
    assert reply.status == 200
    results = by_id(reply)
    # A submit would end each attempt in progress: warnings do not stop it.
    for attempt, warnings in (
        (ready, []),
        (empty, ["no_answers"]),
        (recording, ["recording_in_progress"]),
        (unconfirmed, ["recording_unconfirmed"]),
    ):
        outcome = results[attempt]
        assert (outcome["status"], outcome["can_submit"], outcome["problems"]) == (
            "valid",
            True,
            [],
        )
        assert outcome["warnings"] == warnings
    assert results[ended]["problems"] == ["not_in_progress"]
    assert results[ended]["attempt_status"] == "completed"
    assert (results[unknown]["status"], results[unknown]["can_submit"]) == ("not_found", False)
    assert reply.body["summary"] == {"succeeded": 4, "failed": 2}


# -- batch_submit --------------------------------------------------------------


def _completion_counts(database: MigratedDatabase, scenario: uuid.UUID) -> tuple[int, int, int]:
    (row,) = owner_rows(
        database,
        "select (select count(*) from fact_scenario_attempts where scenario_id = %(s)s),"
        " (select coalesce(sum(total_times_used), 0) from scenario_metadata"
        "   where scenario_id = %(s)s),"
        " (select coalesce(sum(times_completed), 0) from user_scenario_progress"
        "   where scenario_id = %(s)s)",
        {"s": scenario},
    )
    return tuple(int(n) for n in row)


def test_batch_submit_ends_each_once_and_repeats_answer_the_stored_result(
    call, call_batch, world: World, database: MigratedDatabase, scenario: uuid.UUID
) -> None:
    trainee = world.users["trainee_a1"]
    ids = [start(call, trainee, scenario) for _ in range(3)]
    unknown = str(uuid.uuid4())
    first = call_batch(batch_event(trainee, "batch_submit", [*ids, unknown]))
    assert first.status == 200
    assert [r["status"] for r in first.body["results"]] == ["submitted"] * 3 + ["not_found"]
    assert first.body["results"][0]["result"]["status"] == "completed"
    assert _completion_counts(database, scenario) == (3, 3, 3)

    again = call_batch(batch_event(trainee, "batch_submit", ids))
    assert [r["status"] for r in again.body["results"]] == ["already_ended"] * 3
    assert [r["result"] for r in again.body["results"]] == [
        r["result"] for r in first.body["results"][:3]
    ]
    changed = call_batch(
        batch_event(trainee, "batch_submit", [{"attempt_id": ids[0], "status": "abandoned"}])
    )
    (outcome,) = changed.body["results"]
    assert (outcome["status"], outcome["changed"], outcome["current_version"]) == (
        "conflict",
        ["status"],
        2,
    )
    assert _completion_counts(database, scenario) == (3, 3, 3)


def test_batch_and_single_submits_racing_move_counters_once(
    call, call_batch, world: World, database: MigratedDatabase, scenario: uuid.UUID
) -> None:
    trainee = world.users["trainee_a1"]
    ids = [start(call, trainee, scenario) for _ in range(5)]
    barrier = threading.Barrier(8)
    replies: list[Reply] = []

    def batch() -> None:
        event = batch_event(trainee, "batch_submit", ids)
        barrier.wait()
        replies.append(call_batch(event))

    def single(attempt_id: str) -> None:
        event = http_event(
            "POST",
            f"/attempts/{attempt_id}",
            user=trainee,
            query={"action": "submit"},
            body={},
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": attempt_id},
        )
        barrier.wait()
        replies.append(call(event))

    threads = [threading.Thread(target=batch) for _ in range(3)]
    threads += [threading.Thread(target=single, args=(a,)) for a in ids[:5]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in replies) == [200] * 8
    batch_outcomes = [
        r for reply in replies if "results" in reply.body for r in reply.body["results"]
    ]
    assert {r["status"] for r in batch_outcomes} <= {"submitted", "already_ended"}
    # Each attempt ended by at most one batch (or else by its single submit).
    ended = [r["attempt_id"] for r in batch_outcomes if r["status"] == "submitted"]
    assert len(ended) == len(set(ended))
    assert _completion_counts(database, scenario) == (5, 5, 5)
    final = versions(database, ids)
    assert {v[0] for v in final.values()} == {2}


# -- whole-request refusals ------------------------------------------------------------


def test_an_unknown_operation_is_422_naming_the_allowed_ones(call_batch, world: World) -> None:
    reply = call_batch(batch_event(world.users["trainee_a1"], "teleport", [str(uuid.uuid4())]))
    assert reply.status == 422
    (error,) = reply.problem["errors"]
    assert error["field"] == "body.operation"
    for name in (
        "batch_save",
        "multiple_states",
        "batch_activity",
        "validate",
        "batch_submit",
        "mixed_reads",
    ):
        assert name in error["message"]


def test_more_items_than_the_limit_is_422_naming_it(call_batch, world: World) -> None:
    ids = [str(uuid.uuid4()) for _ in range(MAX_BATCH_ITEMS + 1)]
    reply = call_batch(batch_event(world.users["trainee_a1"], "multiple_states", ids))
    assert reply.status == 422
    assert (reply.problem["errors"][0]["field"], reply.problem["limit"]) == ("body.data", 100)
    assert "at most 100" in reply.problem["detail"]


def test_the_limit_a_client_reads_is_the_one_enforced(batch_app) -> None:
    schemas = build_contract(batch_app.api, title="batch")["components"]["schemas"]
    for operation in ("BatchSave", "MultipleStates", "BatchActivity", "ValidateAttempts"):
        assert schemas[operation]["properties"]["data"]["maxItems"] == MAX_BATCH_ITEMS


def test_the_same_attempt_twice_in_a_save_is_422_naming_it(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    data = [{"attempt_id": attempt, "answers": {"n": n}, "expected_version": 1} for n in (1, 2)]
    reply = call_batch(batch_event(trainee, "batch_save", data))
    assert reply.status == 422
    assert reply.problem["duplicates"] == [attempt]
    assert versions(database, [attempt])[attempt][0] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [("{not json", 400), ({"operation": "validate", "data": []}, 422), ({"data": []}, 422)],
)
def test_a_malformed_batch_is_refused_whole(
    call_batch, world: World, body: Any, status: int
) -> None:
    event = http_event("POST", "/attempts/batch", user=world.users["trainee_a1"], body=body)
    assert call_batch(event).status == status


def test_the_batch_contract_is_served_beside_the_route(call_batch) -> None:
    reply = call_batch(http_event("GET", "/attempts/batch/openapi.json"))
    assert reply.status == 200
    operation = reply.body["paths"]["/attempts/batch"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert len(schema["anyOf"]) == 6  # the five operations and mixed_reads
    assert operation["responses"]["409"]["headers"]["Retry-After"]
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])


# -- idempotency ---------------------------------------------------------------

Call = Callable[[dict[str, Any]], Reply]


def keyed(event: dict[str, Any], key: str) -> dict[str, Any]:
    event["headers"]["idempotency-key"] = key
    return event


def test_a_key_replayed_ten_times_writes_once_with_identical_answers(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    ids = [start(call, trainee, world.scenarios["a"]) for _ in range(3)]
    data = [{"attempt_id": a, "answers": {"k": 1}, "expected_version": 1} for a in ids]
    key = f"key-{uuid.uuid4()}"
    replies = [call_batch(keyed(batch_event(trainee, "batch_save", data), key)) for _ in range(10)]
    assert {r.status for r in replies} == {200}
    assert all(r.body == replies[0].body for r in replies)
    assert [r["status"] for r in replies[0].body["results"]] == ["saved"] * 3
    assert "idempotent-replayed" not in replies[0].headers
    assert all(r.headers["idempotent-replayed"] == "true" for r in replies[1:])
    assert {v[0] for v in versions(database, ids).values()} == {2}


def test_a_key_sent_concurrently_writes_once(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    """Ten at once: one does the work; the others are 409 with Retry-After while it
    runs, and replay its answer once it has committed (retried here at once)."""
    trainee = world.users["trainee_a1"]
    ids = [start(call, trainee, world.scenarios["a"]) for _ in range(5)]
    data = [{"attempt_id": a, "answers": {"k": 2}, "expected_version": 1} for a in ids]
    key = f"key-{uuid.uuid4()}"
    barrier = threading.Barrier(10)
    finals: list[Reply] = []
    busy: list[Reply] = []

    def send() -> None:
        barrier.wait()
        for _ in range(1000):
            reply = call_batch(keyed(batch_event(trainee, "batch_save", data), key))
            if reply.status != 409:
                finals.append(reply)
                return
            busy.append(reply)
        raise AssertionError("the key stayed in flight")

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(finals) == 10
    assert {r.status for r in finals} == {200}
    assert all(r.body == finals[0].body for r in finals)
    assert [r["status"] for r in finals[0].body["results"]] == ["saved"] * 5
    assert sum("idempotent-replayed" not in r.headers for r in finals) == 1
    assert all(r.headers["retry-after"] == "1" for r in busy)
    assert {v[0] for v in versions(database, ids).values()} == {2}


def test_a_key_in_flight_is_409_with_retry_after(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    """A transaction that has claimed the key and not committed is in flight."""
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"key-{uuid.uuid4()}"
    event = batch_event(trainee, "validate", [attempt])
    with psycopg.connect(database.app_url) as other:
        other.execute(
            "select set_config('app.org_id', %s, true), set_config('app.user_id', %s, true),"
            " set_config('app.role', 'trainee', true)",
            [str(trainee.org_id), trainee.user_id],
        )
        scope = f"http:{trainee.org_id}:{trainee.user_id}"
        other.execute("select dedupe_claim(%s, %s, 'anything')", [scope, key])
        reply = call_batch(keyed(event, key))
        assert reply.status == 409
        assert reply.headers["retry-after"] == "1"
        assert "still running" in reply.problem["detail"]
        other.rollback()
    assert call_batch(keyed(batch_event(trainee, "validate", [attempt]), key)).status == 200


def test_the_same_key_with_another_request_is_refused(
    call, call_batch, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"key-{uuid.uuid4()}"
    first = [{"attempt_id": attempt, "answers": {"v": 1}, "expected_version": 1}]
    other = [{"attempt_id": attempt, "answers": {"v": 2}, "expected_version": 1}]
    assert call_batch(keyed(batch_event(trainee, "batch_save", first), key)).status == 200
    reply = call_batch(keyed(batch_event(trainee, "batch_save", other), key))
    assert reply.status == 422
    assert reply.problem["errors"][0]["field"] == "header.Idempotency-Key"
    assert versions(database, [attempt])[attempt][:2] == (2, {"v": 1})
    # Keys are per user: another caller's same key is another key.
    manager = world.users["manager_a"]
    reply = call_batch(keyed(batch_event(manager, "multiple_states", [attempt]), key))
    assert (reply.status, "idempotent-replayed" in reply.headers) == (200, False)


def test_a_failure_inside_the_transaction_stores_no_key(
    call,
    call_batch,
    batch_app,
    world: World,
    database: MigratedDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write ran, then the request failed before commit: neither the write nor
    the key remains, and the retry with the key does the work."""
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = f"key-{uuid.uuid4()}"
    data = [{"attempt_id": attempt, "answers": {"x": 1}, "expected_version": 1}]
    original = batch_app.batch.run

    def fail_after_the_write(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise Unavailable("the database went away after the write", retry_after=1)

    monkeypatch.setattr(batch_app.batch, "run", fail_after_the_write)
    failed = call_batch(keyed(batch_event(trainee, "batch_save", data), key))
    assert failed.status == 503
    monkeypatch.undo()
    assert versions(database, [attempt])[attempt][0] == 1
    stored = owner_rows(database, "select count(*) from dedupe_records where key = %s", [key])
    assert stored == [(0,)]
    retry = call_batch(keyed(batch_event(trainee, "batch_save", data), key))
    assert (retry.status, retry.body["results"][0]["status"]) == (200, "saved")
    assert "idempotent-replayed" not in retry.headers
    assert versions(database, [attempt])[attempt][0] == 2


def test_starting_with_a_key_starts_one_attempt(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    key = f"start-{uuid.uuid4()}"
    body = {"scenario_id": str(world.scenarios["a"]), "metadata": {"key": key}}
    replies = [call(keyed(http_event("POST", "/attempts", user=trainee, body=body), key))]
    replies += [call(keyed(http_event("POST", "/attempts", user=trainee, body=body), key))]
    assert [r.status for r in replies] == [201, 201]
    assert replies[0].body == replies[1].body
    assert replies[1].headers["location"] == replies[0].headers["location"]
    assert replies[1].headers["idempotent-replayed"] == "true"
    started = owner_rows(
        database, "select count(*) from scenario_attempts where metadata->>'key' = %s", [key]
    )
    assert started == [(1,)]


def test_submitting_with_a_key_replays_and_without_one_behaves_as_before(
    call, world: World, database: MigratedDatabase, scenario: uuid.UUID
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, scenario)
    key = f"submit-{uuid.uuid4()}"

    def submit(key: str | None) -> Reply:
        event = http_event(
            "POST",
            f"/attempts/{attempt}",
            user=trainee,
            query={"action": "submit"},
            body={"status": "completed"},
            route="/attempts/{attemptId}",
            path_parameters={"attemptId": attempt},
        )
        return call(keyed(event, key) if key else event)

    first, again, plain = submit(key), submit(key), submit(None)
    assert (first.status, again.status, plain.status) == (200, 200, 200)
    assert again.body == first.body
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in plain.headers
    assert _completion_counts(database, scenario) == (1, 1, 1)


def test_an_expired_key_is_as_good_as_absent(
    call_batch, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    key = f"old-{uuid.uuid4()}"
    event = batch_event(trainee, "multiple_states", [str(uuid.uuid4())])
    assert call_batch(keyed(event, key)).status == 200
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update dedupe_records set expires_at = now() - interval '1 second' where key = %s",
            [key],
        )
    # Another request with the old key: judged afresh, not refused as another's.
    other = batch_event(trainee, "validate", [str(uuid.uuid4())])
    reply = call_batch(keyed(other, key))
    assert (reply.status, "idempotent-replayed" in reply.headers) == (200, False)


# -- mixed_reads -----------------------------------------------------------------


def _single(call, user: User, kind: str, attempt: str) -> Reply:
    """The single endpoint's reply to the same read."""
    path, query = {
        "state": (f"/attempts/{attempt}", None),
        "info": (f"/attempts/{attempt}", {"action": "info"}),
        "stats": (f"/attempts/{attempt}/stats", {"type": "stats"}),
    }[kind]
    route = "/attempts/{attemptId}" + ("/stats" if kind == "stats" else "")
    return call(
        http_event(
            "GET", path, user=user, route=route, path_parameters={"attemptId": attempt}, query=query
        )
    )


# Who sees trainee_a1's attempt: themself, their manager and their org's admin;
# a teammate and another org's admin do not (the single reads' rules).
SEES = {"trainee_a1": True, "trainee_a2": False, "manager_a": True, "admin_a": True}
SEES |= {"admin_b": False}


@pytest.mark.parametrize("reader", list(SEES))
def test_mixed_reads_answer_each_read_as_the_single_endpoint_would(
    call, call_batch, world: World, scenario: uuid.UUID, reader: str
) -> None:
    trainee, user = world.users["trainee_a1"], world.users[reader]
    theirs = start(call, trainee, scenario)
    own = start(call, user, world.scenarios["a" if reader != "admin_b" else "b"])
    unknown = str(uuid.uuid4())
    data = [
        {"type": "stats", "attempt_id": theirs},
        {"type": "state", "attempt_id": own},
        {"type": "info", "attempt_id": theirs},
        {"type": "state", "attempt_id": unknown},
        {"type": "state", "attempt_id": theirs},
        {"type": "info", "attempt_id": own},
        {"type": "stats", "attempt_id": own},
        {"type": "info", "attempt_id": theirs},
    ]
    reply = call_batch(batch_event(user, "mixed_reads", data))
    assert reply.status == 200, reply.body
    results = reply.body["results"]
    assert [(r["type"], r["attempt_id"]) for r in results] == [
        (d["type"], d["attempt_id"]) for d in data
    ]
    sees = SEES[reader]
    expected = ["found" if (d["attempt_id"] == own or sees) else "not_found" for d in data]
    expected[3] = "not_found"
    assert [r["status"] for r in results] == expected
    for item, result in zip(data, results, strict=True):
        single = _single(call, user, item["type"], item["attempt_id"])
        if result["status"] == "found":
            assert single.status == 200
            assert result[item["type"]] == single.body
            others = {"state", "info", "stats"} - {item["type"]}
            assert all(result[k] is None for k in others)
        else:
            assert single.status == 404
    found = expected.count("found")
    assert reply.body["summary"] == {"succeeded": found, "failed": len(data) - found}


def test_mixed_reads_stats_count_the_scenario_as_the_caller_sees_it(
    call, call_batch, world: World, scenario: uuid.UUID
) -> None:
    trainee, manager = world.users["trainee_a1"], world.users["manager_a"]
    attempts = [start(call, trainee, scenario), start(call, trainee, scenario)]
    start(call, manager, scenario)
    data = [{"type": "stats", "attempt_id": a} for a in attempts]
    by_trainee = call_batch(batch_event(trainee, "mixed_reads", data)).body["results"]
    by_manager = call_batch(batch_event(manager, "mixed_reads", data)).body["results"]
    assert [r["stats"]["total_attempts"] for r in by_trainee] == [2, 2]
    assert [r["stats"]["in_progress_attempts"] for r in by_manager] == [3, 3]
    assert by_trainee[0]["stats"]["scenario_id"] == str(scenario)


def test_mixed_reads_refuse_an_unknown_type_and_more_than_the_limit(
    call_batch, world: World
) -> None:
    trainee = world.users["trainee_a1"]
    bad = call_batch(
        batch_event(trainee, "mixed_reads", [{"type": "x", "attempt_id": str(uuid.uuid4())}])
    )
    assert bad.status == 422
    assert bad.problem["errors"][0]["field"] == "body.data.0.type"
    items = [{"type": "state", "attempt_id": str(uuid.uuid4())}] * (MAX_BATCH_ITEMS + 1)
    over = call_batch(batch_event(trainee, "mixed_reads", items))
    assert (over.status, over.problem["limit"]) == (422, MAX_BATCH_ITEMS)

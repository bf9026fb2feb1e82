"""Entry points beyond HTTP: the maintenance function's sweep runs on its
schedule's event (EventBridge's own shape or the template's Input) as the
system principal and removes only what has expired; the local stack fires a
schedule on demand and rate() schedules on their period; a queue consumer
reports partial batch failures, retrying transient ones and leaving permanent
ones to the dead-letter queue."""

from __future__ import annotations

import io
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev.invoke import LambdaContext
from dev.schedules import Scheduler, find_schedule, scheduled_event
from dev.template import load_template, schedules
from practice.core.errors import Unavailable
from practice.core.runtime import logger
from practice.events import Permanent, consume_queue
from tests.conftest import MigratedDatabase
from tests.support import World, run_dev

EVENTS = Path(__file__).resolve().parents[2] / "events"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def maintenance(database: MigratedDatabase):
    """`functions.maintenance.app`, imported as Lambda would."""
    import importlib

    module = importlib.import_module("functions.maintenance.app")
    yield module
    module.db.close()


def _records(database: MigratedDatabase, world: World) -> tuple[str, str, str]:
    """An expired record of a member, an expired one of the system, a live one."""
    trainee = world.users["trainee_a1"]
    scope = f"http:{trainee.org_id}:{trainee.user_id}"
    keys = [f"sweep-{uuid.uuid4()}" for _ in range(3)]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into dedupe_records (scope, key, org_id, user_id, request_hash, expires_at)"
            " values (%s, %s, %s, %s, 'h', now() - interval '1 minute'),"
            " ('webhook:test', %s, null, null, 'h', now() - interval '1 minute'),"
            " (%s, %s, %s, %s, 'h', now() + interval '1 day')",
            [scope, keys[0], trainee.org_id, trainee.user_id, keys[1], scope, keys[2],
             trainee.org_id, trainee.user_id],
        )  # fmt: skip
    return keys[0], keys[1], keys[2]


def _left(database: MigratedDatabase, keys: tuple[str, ...]) -> set[str]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute("select key from dedupe_records where key = any(%s)", [list(keys)])
        return {row[0] for row in rows}


@pytest.mark.parametrize(
    "event_file", ["maintenance-sweep-dedupe.200.json", "maintenance-scheduled-event.200.json"]
)
def test_the_sweep_removes_expired_records_of_every_scope_and_keeps_the_rest(
    maintenance, database: MigratedDatabase, world: World, event_file: str
) -> None:
    keys = _records(database, world)
    event = json.loads((EVENTS / event_file).read_text())
    result = maintenance.handler(event, LambdaContext(function_name="maintenance"))
    assert result["job"] == "sweep-dedupe"
    assert result["result"]["deleted"] >= 2
    assert _left(database, keys) == {keys[2]}


def test_a_job_the_function_does_not_run_fails_the_invocation(maintenance) -> None:
    with pytest.raises(ValueError, match="no job 'teleport'"):
        maintenance.handler({"job": "teleport"}, LambdaContext(function_name="maintenance"))


def test_the_dev_command_lists_and_fires_a_schedule(
    database: MigratedDatabase, world: World
) -> None:
    listed = run_dev("schedule")
    assert listed.returncode == 0, listed.stderr
    assert "SweepDedupe\tMaintenanceFunction\trate(1 hour)" in listed.stdout
    keys = _records(database, world)
    fired = run_dev("schedule", "SweepDedupe", "--database-url", database.app_url)
    assert fired.returncode == 0, fired.stderr
    assert json.loads(fired.stdout)["job"] == "sweep-dedupe"
    assert _left(database, keys) == {keys[2]}
    unknown = run_dev("schedule", "Teleport")
    assert unknown.returncode == 2
    assert "no schedule 'Teleport'" in unknown.stderr


def test_the_local_scheduler_fires_rate_schedules_on_their_period() -> None:
    schedule = find_schedule(schedules(load_template()), "SweepDedupe")
    fired: list[Any] = []
    twice = threading.Event()

    def fire(which: Any) -> None:
        fired.append(scheduled_event(which))
        if len(fired) >= 2:
            twice.set()

    # The template's period is an hour; the test's is a twentieth of a second.
    scheduler = Scheduler([schedule], fire, print, period=lambda _schedule: 0.05).start()
    try:
        assert twice.wait(timeout=5), fired
    finally:
        scheduler.stop()
    assert fired[0] == {"job": "sweep-dedupe"}


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"r{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:practice-test",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_a_queue_consumer_reports_only_the_messages_that_failed() -> None:
    handled: list[str] = []

    def handle(record: Any) -> None:
        if record.body == "broken":
            raise Permanent("the export it names does not exist")
        if record.body == "later":
            raise Unavailable("the database is unreachable", retry_after=1)
        handled.append(record.body)

    handler = consume_queue(handle, budget_seconds=5)
    stream = io.StringIO()  # what the Powertools logger writes (its handler holds a stream)
    previous = logger.registered_handler.setStream(stream)
    try:
        answer = handler(_sqs_event("ok", "broken", "later", "fine"), LambdaContext())
    finally:
        logger.registered_handler.setStream(previous)
    # Lambda deletes the others; these two come back (the permanent one until its
    # receives run out and the redrive policy moves it to the dead-letter queue).
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert handled == ["ok", "fine"]
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    permanent = [line for line in logged if line.get("reason")]
    assert permanent[0]["reason"] == "the export it names does not exist"
    assert permanent[0]["correlation_id"] == "m1"

"""The exports function end to end: API Gateway v2 events into
`functions.exports.app.handler`, the queue's messages (moto's SQS server over
HTTP) into `functions.exports.app.worker` as SQS events, the file written to
moto's S3 and downloaded from the presigned URL over HTTP, against the real
database with row-level security."""

from __future__ import annotations

import csv
import io
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import psycopg
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from psycopg.types.json import Jsonb

from dev.invoke import LambdaContext
from dev.queues import create_queue, deliver_once, queue_arn, sqs_event
from practice.core.config import Settings
from practice.events import Permanent, consume_queue
from tests.conftest import MigratedDatabase
from tests.e2e.conftest import UPLOADS_BUCKET, Reply, call_handler
from tests.support import User, World, build_world, http_event

PART = 5 * 1024 * 1024
HEADER = [
    "attempt_id",
    "date",
    "user_id",
    "user_name",
    "scenario_id",
    "scenario_title",
    "score",
    "duration_seconds",
    "talk_percent",
    "started_at",
    "ended_at",
]
# Display names and a title starting with each character a spreadsheet reads
# as a formula (OWASP), and values CSV must quote.
DANGEROUS_NAMES = {
    "admin_a": "=SUM(A1:A9)",
    "manager_a": "+1+1",
    "trainee_a1": "-2+3",
    "trainee_a2": "@cmd",
    "manager_a2": "\tTabbed",
    "trainee_a3": "\rReturned",
}
DANGEROUS_TITLE = '\nLine, "quoted", and more\nlines'


@dataclass
class Stack:
    module: ModuleType
    sqs: Any
    s3: Any
    queue_url: str
    settings: Settings

    def post(self, user: User, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return call_handler(
            self.module, http_event("POST", "/exports", user=user, body=body, headers=headers)
        )

    def get(self, user: User, export_id: str) -> Reply:
        event = http_event(
            "GET",
            f"/exports/{export_id}",
            user=user,
            route="/exports/{exportId}",
            path_parameters={"exportId": export_id},
        )
        return call_handler(self.module, event)

    def list(self, user: User, **query: str) -> Reply:
        return call_handler(self.module, http_event("GET", "/exports", user=user, query=query))

    def deliver(self, worker: Callable[..., Any] | None = None) -> int:
        """Deliver what the queue holds, a message per invocation, as Lambda would."""
        handler = worker or self.module.worker
        delivered = 0
        while n := deliver_once(self.sqs, self.queue_url, lambda e: handler(e, worker_context())):
            delivered += n
        return delivered

    def receive(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])


def worker_context() -> LambdaContext:
    return LambdaContext(function_name="exports-worker", timeout=900)


@pytest.fixture(scope="module")
def stack(database: MigratedDatabase, moto_url: str, exports_app: ModuleType) -> Iterator[Stack]:
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    queue_url = create_queue(
        sqs, f"exports-{uuid.uuid4().hex[:6]}", visibility_timeout=900, max_receives=5
    )
    env = {
        "PRACTICE_S3_ENDPOINT_URL": moto_url,
        "PRACTICE_SQS_ENDPOINT_URL": moto_url,
        "PRACTICE_UPLOADS_BUCKET": UPLOADS_BUCKET,
        "PRACTICE_EXPORTS_QUEUE_URL": queue_url,
        "PRACTICE_EXPORT_PART_BYTES": str(PART),
        "PRACTICE_EXPORT_MISSING_ROW_WAIT_SECONDS": "0.2",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    module = exports_app
    # The module was imported before: its services get this stack's settings.
    settings = Settings()
    module.exports.settings = settings
    module.export_worker.settings = settings
    try:
        yield Stack(module, sqs, boto3.client("s3", endpoint_url=moto_url), queue_url, settings)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def data(database: MigratedDatabase) -> World:
    """A world of this module: completed attempts of every member of both orgs
    in March 2025 (one in May, outside the period asked for), dangerous names."""
    world = build_world(database.admin_url)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for name, display in DANGEROUS_NAMES.items():
            conn.execute(
                "update org_members set display_name = %s where user_id = %s",
                [display, world.users[name].user_id],
            )
        conn.execute(
            "update scenarios set title = %s where id = %s", [DANGEROUS_TITLE, world.scenarios["a"]]
        )
        for name, user in world.users.items():
            scenario = world.scenarios["a" if user.org_id == world.orgs["a"] else "b"]
            for day in ("2025-03-01", "2025-03-02", "2025-03-31", "2025-05-01"):
                conn.execute(
                    "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, status,"
                    " started_at, ended_at, duration_seconds, score, kpis) values (%s, %s, %s,"
                    " 'completed', %s::date + time '10:00', %s::date + time '10:05', 300,"
                    " %s, %s)",
                    [
                        user.org_id,
                        user.user_id,
                        scenario,
                        day,
                        day,
                        len(name) * 3,
                        psycopg.types.json.Jsonb({"talk_ms": 1000, "listen_ms": 3000}),
                    ],
                )
    return world


def march(**extra: Any) -> dict[str, Any]:
    return {"kind": "attempts", "filters": {"from": "2025-03-01", "to": "2025-03-31", **extra}}


def visible(database: MigratedDatabase, world: World, who: str) -> set[str]:
    """The attempt ids of March 2025 that ``who`` may see, read as the owner."""
    user = world.users[who]
    if user.role == "admin":
        members = [u.user_id for u in world.users.values() if u.org_id == user.org_id]
    elif user.role == "manager":
        members = [user.user_id] + [
            u.user_id for u in world.users.values() if u.manager_user_id == user.user_id
        ]
    else:
        members = [user.user_id]
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "select attempt_id::text from fact_scenario_attempts where org_id = %s"
            " and user_id = any(%s) and date_key between '2025-03-01' and '2025-03-31'",
            [user.org_id, members],
        ).fetchall()
    return {r[0] for r in rows}


def export_and_download(stack: Stack, user: User, body: Any) -> tuple[dict, list[dict[str, str]]]:
    posted = stack.post(user, body)
    assert posted.status == 202, posted.body
    assert posted.body["status"] == "pending"
    assert posted.headers["location"] == f"/exports/{posted.body['id']}"
    assert stack.deliver() == 1
    got = stack.get(user, posted.body["id"])
    assert got.status == 200, got.body
    assert got.body["status"] == "succeeded", got.body
    download = httpx.get(got.body["download_url"])
    assert download.status_code == 200, download.text
    disposition = download.headers["content-disposition"]
    assert disposition == f'attachment; filename="{got.body["file_name"]}"'
    assert got.body["file_name"].startswith("attempts_2025-03-01_to_2025-03-31_")
    assert download.headers["content-type"].startswith("text/csv")
    text = download.content.decode()
    assert got.body["bytes"] == len(download.content)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert header == HEADER
    rows = [dict(zip(header, r, strict=True)) for r in reader]
    assert got.body["row_count"] == len(rows)
    return got.body, rows


@pytest.mark.parametrize("who", ["admin_a", "manager_a", "trainee_a1", "admin_b"])
def test_an_export_holds_what_its_requester_may_see(
    stack: Stack, data: World, database: MigratedDatabase, who: str
) -> None:
    """Requested, written by the worker from its queue, downloaded from the URL:
    exactly the attempts of the period the requester may see (RLS under their
    own principal); another org's admin gets nothing of this org."""
    _export, rows = export_and_download(stack, data.users[who], march())
    expected = visible(database, data, who)
    assert expected
    assert {r["attempt_id"] for r in rows} == expected
    if who == "admin_b":
        org_a = {u.user_id for u in data.users.values() if u.org_id == data.orgs["a"]}
        assert not {r["user_id"] for r in rows} & org_a
    first = rows[0]
    assert first["date"] == "2025-03-01"
    assert first["started_at"] == "2025-03-01 10:00:00+00"
    assert first["talk_percent"] == "25.0"
    assert first["duration_seconds"] == "300"


def test_formulas_are_neutralised_and_values_round_trip(stack: Stack, data: World) -> None:
    _export, rows = export_and_download(stack, data.users["admin_a"], march())
    names = {r["user_id"]: r["user_name"] for r in rows}
    for name, display in DANGEROUS_NAMES.items():
        assert names[data.users[name].user_id] == "'" + display
    assert {r["scenario_title"] for r in rows} == {"'" + DANGEROUS_TITLE}
    # Numbers stay numbers: nothing is prefixed where no text is.
    assert all(not r["score"].startswith("'") for r in rows)


def test_filters_narrow_the_export(stack: Stack, data: World, database: MigratedDatabase) -> None:
    admin, trainee = data.users["admin_a"], data.users["trainee_a1"]
    _e, by_user = export_and_download(stack, admin, march(user_id=trainee.user_id))
    assert {r["user_id"] for r in by_user} == {trainee.user_id}
    assert len(by_user) == 3
    _e, by_team = export_and_download(stack, admin, march(team=data.users["manager_a"].user_id))
    assert {r["user_id"] for r in by_team} == {
        data.users["trainee_a1"].user_id,
        data.users["trainee_a2"].user_id,
    }
    _e, other = export_and_download(stack, admin, march(scenario_id=str(uuid.uuid4())))
    assert other == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "scenarios", "filters": march()["filters"]}, "body.kind"),
        (
            {"kind": "attempts", "filters": {"from": "2024-01-01", "to": "2025-01-01"}},
            "body.filters.to",
        ),
        ({"kind": "attempts", "filters": {"from": "2025-03-02", "to": "2025-03-01"}}, "body"),
        ({"kind": "attempts", "filters": {"from": "yesterday", "to": "2025-03-01"}}, "body"),
        (march(scenario_id="nope"), "body.filters.scenario_id"),
        (march(user_id="x; drop"), "body.filters.user_id"),
        ({**march(), "format": "xlsx"}, "body.format"),
    ],
)
def test_requests_are_validated(stack: Stack, data: World, body: Any, field: str) -> None:
    reply = stack.post(data.users["admin_a"], body)
    assert reply.status == 422, reply.body
    fields = [e.get("field", "") for e in reply.problem.get("errors", [])] + [
        reply.problem.get("field", "")
    ]
    assert any(f.startswith(field) for f in fields), reply.problem
    assert stack.receive() == []


def test_a_year_is_the_longest_period_by_default(stack: Stack, data: World) -> None:
    body = {"kind": "attempts", "filters": {"from": "2024-01-01", "to": "2024-12-31"}}
    reply = stack.post(data.users["trainee_a1"], body)
    assert reply.status == 202  # 2024 has 366 days
    assert stack.deliver() == 1


def test_an_idempotency_key_queues_one_export(stack: Stack, data: World) -> None:
    user = data.users["trainee_a1"]
    key = {"Idempotency-Key": f"export-{uuid.uuid4()}"}
    first, again = stack.post(user, march(), key), stack.post(user, march(), key)
    assert first.status == again.status == 202
    assert again.body["id"] == first.body["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert stack.deliver() == 1


def test_urls_are_minted_per_request_and_expired_exports_have_none(
    stack: Stack, data: World, database: MigratedDatabase
) -> None:
    user = data.users["trainee_a2"]
    export, _rows = export_and_download(stack, user, march())
    asked_at = datetime.now(UTC).replace(microsecond=0)
    again = stack.get(user, export["id"]).body
    # Signed when asked (SigV4 signs to the second), not when the file was written.
    signed = parse_qs(urlsplit(again["download_url"]).query)["X-Amz-Date"][0]
    assert datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) >= asked_at
    assert again["download_expires_at"] >= export["download_expires_at"]
    assert httpx.get(again["download_url"]).status_code == 200
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update exports set completed_at = now() - interval '8 days' where id = %s",
            [export["id"]],
        )
    expired = stack.get(user, export["id"]).body
    assert expired["status"] == "expired"
    assert expired["download_url"] is None


def test_exports_are_seen_by_their_requester_and_the_org_admin_only(
    stack: Stack, data: World
) -> None:
    trainee = data.users["trainee_a3"]
    posted = stack.post(trainee, march()).body
    stack.deliver()
    assert stack.get(data.users["admin_a"], posted["id"]).status == 200
    for other in ("manager_a2", "trainee_a1", "admin_b"):  # their manager sees it no more
        reply = stack.get(data.users[other], posted["id"])
        assert reply.status == 404, (other, reply.body)
    assert stack.get(trainee, str(uuid.uuid4())).status == 404


def test_lists_are_newest_first_in_keyset_pages(stack: Stack, data: World) -> None:
    trainee, admin = data.users["trainee_b1"], data.users["admin_b"]
    ids = [stack.post(trainee, march()).body["id"] for _ in range(3)]
    stack.deliver()
    own = stack.list(trainee).body
    assert [e["id"] for e in own["items"]][:3] == ids[::-1]
    assert all(e["requested_by"] == trainee.user_id for e in own["items"])
    assert all(e["download_url"] is None for e in own["items"])
    walked: list[str] = []
    cursor = None
    while True:
        query = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = stack.list(admin, **query).body
        walked += [e["id"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(walked) == len(set(walked))
    assert set(ids) <= set(walked)  # the admin sees the org's
    assert stack.list(admin, cursor="bm9wZQ").status == 422
    assert stack.list(admin, cursor=f"1_{uuid.uuid4().hex}").body == {"items": [], "next": None}


# -- failures and redelivery ---------------------------------------------------------


@pytest.fixture(scope="module")
def big(database: MigratedDatabase) -> World:
    """An org of its own with 60,000 facts in January 2026: files of several parts."""
    world = build_world(database.admin_url)
    admin = world.users["admin_a"]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into fact_scenario_attempts (attempt_id, org_id, user_id, scenario_id, score,"
            " duration_seconds, talk_ms, listen_ms, started_at, ended_at)"
            " select gen_random_uuid(), %s, %s, %s, i %% 100, 60 + i %% 600, 1000, 2000,"
            " timestamptz '2026-01-01' + (i || ' seconds')::interval,"
            " timestamptz '2026-01-01' + (i + 60 || ' seconds')::interval"
            " from generate_series(1, 60000) as g(i)",
            [admin.org_id, admin.user_id, world.scenarios["a"]],
        )
    return world


JANUARY = {"kind": "attempts", "filters": {"from": "2026-01-01", "to": "2026-01-31"}}


def _state(database: MigratedDatabase, export_id: str) -> tuple:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select status, error, run, completed_at from exports where id = %s", [export_id]
        ).fetchone()


def _left_in_storage(stack: Stack, org_id: uuid.UUID, export_id: str) -> tuple[list, list]:
    """The export's object and incomplete uploads."""
    prefix = f"exports/{org_id}/{export_id}"
    objects = stack.s3.list_objects_v2(Bucket=UPLOADS_BUCKET, Prefix=prefix).get("Contents", [])
    uploads = stack.s3.list_multipart_uploads(Bucket=UPLOADS_BUCKET, Prefix=prefix)
    return objects, uploads.get("Uploads", [])


class FailingS3:
    """The real client, but part ``n`` fails."""

    def __init__(self, real: Any, n: int) -> None:
        self.real, self.n = real, n

    def upload_part(self, **kw: Any) -> Any:
        if kw["PartNumber"] == self.n:
            raise RuntimeError("injected: the part could not be stored")
        return self.real.upload_part(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_storage_failure_mid_upload_fails_the_export_and_leaves_nothing(
    stack: Stack, big: World, database: MigratedDatabase
) -> None:
    admin = big.users["admin_a"]
    worker = stack.module.export_worker
    worker.s3_override = FailingS3(worker.s3, 2)
    try:
        posted = stack.post(admin, JANUARY).body
        assert stack.deliver() == 1
    finally:
        worker.s3_override = None
    status, error, _run, _done = _state(database, posted["id"])
    assert status == "failed"
    assert "part 2" in error
    got = stack.get(admin, posted["id"]).body
    assert got["status"] == "failed"
    assert got["error"] == error
    assert got["download_url"] is None
    assert _left_in_storage(stack, admin.org_id, posted["id"]) == ([], [])
    assert stack.receive() == []  # failed for good: not redelivered


def test_a_dropped_database_connection_fails_the_export_and_leaves_nothing(
    stack: Stack, big: World, database: MigratedDatabase
) -> None:
    admin = big.users["admin_a"]
    worker = stack.module.export_worker

    def drop(part: int) -> None:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            killed = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where query ilike 'copy (select * from export_attempt_rows%%'"
            ).fetchall()
            assert killed

    worker.on_part = drop
    try:
        posted = stack.post(admin, JANUARY).body
        assert stack.deliver() == 1
    finally:
        worker.on_part = None
    status, error, _run, _done = _state(database, posted["id"])
    assert status == "failed"
    assert "database" in error
    assert _left_in_storage(stack, admin.org_id, posted["id"]) == ([], [])


def test_a_large_export_streams_in_parts_and_reports_progress(
    stack: Stack, big: World, database: MigratedDatabase
) -> None:
    admin = big.users["admin_a"]
    seen: list[tuple] = []
    worker = stack.module.export_worker
    posted = stack.post(admin, JANUARY).body
    worker.on_part = lambda _n: seen.append(
        tuple(
            psycopg.connect(database.admin_url)
            .execute("select status, row_count from exports where id = %s", [posted["id"]])
            .fetchone()
        )
    )
    try:
        assert stack.deliver() == 1
    finally:
        worker.on_part = None
    outcome = worker.last
    assert outcome is not None
    assert outcome.status == "succeeded"
    assert outcome.rows == 60_000
    assert outcome.parts >= 2
    assert outcome.peak_buffer < PART + 64 * 1024  # a part, never the file
    assert seen[0][0] == "running"
    assert all(rows is not None for _s, rows in seen)
    got = stack.get(admin, posted["id"]).body
    assert got["row_count"] == 60_000
    download = httpx.get(got["download_url"])
    assert len(download.content) == got["bytes"] > 2 * PART
    assert download.content.count(b"\n") == 60_001


def test_a_message_delivered_twice_at_once_writes_the_file_once(
    stack: Stack, big: World, database: MigratedDatabase
) -> None:
    admin = big.users["admin_a"]
    posted = stack.post(admin, JANUARY).body
    (message,) = stack.receive()
    event = sqs_event([message], queue_arn(stack.queue_url))
    worker = stack.module.export_worker
    created: list[str] = []
    real = worker.s3

    class Counting:
        def create_multipart_upload(self, **kw: Any) -> Any:
            created.append(kw["Key"])
            return real.create_multipart_upload(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    worker.s3_override = Counting()
    # Two consumers, as two Lambda instances given the same message.
    handlers = [consume_queue(worker.handle_record, budget_seconds=600) for _ in range(2)]
    answers: list[Any] = []
    barrier = threading.Barrier(2)

    def run(handler: Any) -> None:
        barrier.wait()
        answers.append(handler(event, worker_context()))

    threads = [threading.Thread(target=run, args=(h,)) for h in handlers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        worker.s3_override = None
    assert answers == [{"batchItemFailures": []}] * 2
    assert len(created) == 1
    status, _error, run, done = _state(database, posted["id"])
    assert (status, run) == ("succeeded", 1)
    # Delivered once more, later: nothing moves.
    assert handlers[0](event, worker_context()) == {"batchItemFailures": []}
    assert _state(database, posted["id"]) == (status, None, 1, done)
    assert len(created) == 1
    stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_run_whose_lease_ran_out_is_taken_over(
    stack: Stack, data: World, database: MigratedDatabase
) -> None:
    user = data.users["manager_a"]
    posted = stack.post(user, march()).body
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "update exports set status = 'running', run = 1, lease_until = now() - interval '1s'"
            " where id = %s",
            [posted["id"]],
        )
    assert stack.deliver() == 1
    status, _error, run, _done = _state(database, posted["id"])
    assert (status, run) == ("succeeded", 2)


def test_a_message_for_no_export_is_retried_then_left_to_the_dead_letter_queue(
    stack: Stack, data: World
) -> None:
    """Not visible yet (its request commits just after sending), then never: the
    message fails each time (a batch whose every record failed raises, so
    Lambda returns it to the queue) until the redrive policy takes it."""
    body = f'{{"export_id": "{uuid.uuid4()}", "org_id": "{data.orgs["a"]}"}}'
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": body}
    worker = stack.module.export_worker
    record = SQSRecord(sqs_event([message], "arn:q")["Records"][0])
    with pytest.raises(LookupError):
        worker.handle_record(record)
    late = message | {"Attributes": {"ApproximateReceiveCount": "3"}}
    with pytest.raises(Permanent):
        worker.handle_record(SQSRecord(sqs_event([late], "arn:q")["Records"][0]))
    with pytest.raises(Permanent):
        worker.handle_record(SQSRecord(sqs_event([message | {"Body": "{"}], "arn:q")["Records"][0]))
    with pytest.raises(Exception, match="failed processing"):
        stack.module.worker(sqs_event([message], "arn:q"), worker_context())


def test_dates_in_filters_are_dates(stack: Stack, data: World) -> None:
    posted = stack.post(data.users["admin_a"], march()).body
    assert posted["filters"] == {
        "from": str(date(2025, 3, 1)),
        "to": "2025-03-31",
        "scenario_id": None,
        "user_id": None,
        "team": None,
    }
    stack.deliver()


def test_a_queue_that_cannot_be_reached_fails_the_request_and_leaves_nothing(
    stack: Stack, data: World, database: MigratedDatabase
) -> None:
    class Down:
        def send_message(self, **_kw: Any) -> Any:
            raise RuntimeError("injected: the queue is unreachable")

    user = data.users["manager_a2"]
    service = stack.module.exports
    service.sqs_override = Down()
    try:
        reply = stack.post(user, march())
        keyed = stack.post(user, march(), {"Idempotency-Key": f"down-{uuid.uuid4()}"})
    finally:
        service.sqs_override = None
    assert reply.status == keyed.status == 503
    assert "retry-after" in reply.headers
    with psycopg.connect(database.admin_url) as conn:
        left = conn.execute(
            "select count(*) from exports where requested_by = %s", [user.user_id]
        ).fetchone()[0]
    assert left == 0
    assert stack.receive() == []


def _insert_export(database: MigratedDatabase, export_id: uuid.UUID, user: Any) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into exports (id, org_id, requested_by, requester_role, kind, filters)"
            " values (%s, %s, %s, 'trainee', 'attempts', %s)",
            [export_id, user.org_id, user.user_id, Jsonb(march()["filters"])],
        )


def _commit_after_claims(
    worker: Any, monkeypatch: pytest.MonkeyPatch, commit: Callable[[], None], claims: int
) -> None:
    """The request's commit lands right after the worker's ``claims``-th claim found
    nothing: the order a message sent just before its commit can take."""
    query, seen = worker.db.query, [0]

    def query_then_commit(principal: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        rows = query(principal, sql, *args, **kwargs)
        if "export_claim" in sql:
            seen[0] += 1
            if seen[0] == claims:
                commit()
        return rows

    monkeypatch.setattr(worker.db, "query", query_then_commit)


@pytest.mark.parametrize("claims_before_commit", [1, 3])
def test_a_message_that_comes_before_its_row_is_run_once_the_row_commits(
    stack: Stack,
    data: World,
    database: MigratedDatabase,
    monkeypatch: pytest.MonkeyPatch,
    claims_before_commit: int,
) -> None:
    """The request sends before it commits: the worker claims the row as soon as it is
    there, even when it lands between a failed claim and the look that follows."""
    user = data.users["trainee_a1"]
    worker = stack.module.export_worker
    export_id = uuid.uuid4()
    worker.settings = stack.settings.model_copy(update={"export_missing_row_wait_seconds": 5.0})
    _commit_after_claims(
        worker, monkeypatch, lambda: _insert_export(database, export_id, user), claims_before_commit
    )
    try:
        outcome = worker.run(export_id, user.org_id)
    finally:
        worker.settings = stack.settings
    assert outcome.status == "succeeded"
    assert _state(database, str(export_id))[0] == "succeeded"


def test_a_pending_row_that_cannot_be_claimed_is_given_up_within_the_wait(
    stack: Stack, data: World, database: MigratedDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that stays pending but never claims (whatever the reason) is waited for
    within the same bound as a missing one, never in a busy loop."""
    user = data.users["trainee_a1"]
    worker = stack.module.export_worker
    export_id = uuid.uuid4()
    _insert_export(database, export_id, user)
    query, claims = worker.db.query, [0]

    def claim_nothing(principal: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        if "export_claim" in sql:
            claims[0] += 1
            return []
        return query(principal, sql, *args, **kwargs)

    monkeypatch.setattr(worker.db, "query", claim_nothing)
    worker.settings = stack.settings.model_copy(update={"export_missing_row_wait_seconds": 0.3})
    try:
        outcome = worker.run(export_id, user.org_id)
    finally:
        worker.settings = stack.settings
    assert outcome.status == "skipped"
    assert claims[0] <= 10
    assert _state(database, str(export_id))[0] == "pending"


def test_an_invocation_running_out_of_time_fails_the_export_and_leaves_nothing(
    stack: Stack, big: World, database: MigratedDatabase
) -> None:
    """The Lambda context says too little time is left after a part: the worker
    stops, aborts the upload and records why, before Lambda would kill it."""
    admin = big.users["admin_a"]
    worker = stack.module.export_worker
    # The invocation has 900 s; asking to stop with more than that left stops at once.
    worker.settings = stack.settings.model_copy(update={"export_stop_margin_seconds": 1_000.0})
    try:
        posted = stack.post(admin, JANUARY).body
        assert stack.deliver() == 1
    finally:
        worker.settings = stack.settings
    status, error, _run, _done = _state(database, posted["id"])
    assert status == "failed"
    assert "time ran out" in error
    assert _left_in_storage(stack, admin.org_id, posted["id"]) == ([], [])

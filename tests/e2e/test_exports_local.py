"""The local stack's share of exports: the template's queues created in moto
as declared (dead-letter queue and redrive), their messages delivered to their
consumer functions as Lambda's event source mapping would (batch size, partial
failures), and the whole flow over HTTP through the local gateway, ending with
the presigned URL downloaded from moto's server as curl would."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import boto3
import httpx

from dev.queues import Poller, deliver_once, start_queues
from dev.template import load_template
from tests.e2e.conftest import Served
from tests.support import World


def test_the_templates_queues_are_created_with_their_consumers(moto_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    queues = start_queues(load_template(), sqs)
    assert {"ExportsQueue", "ExportsDeadLetterQueue"} <= set(queues.urls)
    assert queues.environment["PRACTICE_EXPORTS_QUEUE_URL"] == queues.urls["ExportsQueue"]
    assert ("ExportsQueue", "ExportsWorkerFunction", 1) in queues.mappings
    attributes = sqs.get_queue_attributes(
        QueueUrl=queues.urls["ExportsQueue"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=queues.urls["ExportsDeadLetterQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive["deadLetterTargetArn"] == dlq
    assert int(redrive["maxReceiveCount"]) == 5


def test_delivery_deletes_what_succeeded_and_leaves_what_failed(moto_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    url = sqs.create_queue(QueueName=f"partial-{time.monotonic_ns()}")["QueueUrl"]
    for body in ("ok", "bad", "fine"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[list[str]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        records = event["Records"]
        seen.append([r["body"] for r in records])
        assert all(r["eventSource"] == "aws:sqs" for r in records)
        failed = [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "bad"]
        return {"batchItemFailures": failed}

    while deliver_once(sqs, url, invoke, batch_size=2):
        pass
    assert sorted(b for batch in seen for b in batch) == ["bad", "fine", "ok"]
    assert all(len(batch) <= 2 for batch in seen)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # "bad" comes back


def test_an_export_through_the_local_gateway_downloads_from_moto(
    served: Served, world: World, moto_url: str
) -> None:
    admin = world.users["admin_a"]
    auth = {"Authorization": f"Bearer {served.token(admin.clerk_org_id, admin.user_id, 'admin')}"}
    runtime = served.gateway.runtime
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    poller = Poller(
        sqs,
        runtime.overrides["PRACTICE_EXPORTS_QUEUE_URL"],
        lambda event: runtime.invoke("ExportsWorkerFunction", event),
    ).start()
    try:
        body = {"kind": "attempts", "filters": {"from": "2024-06-01", "to": "2025-05-31"}}
        posted = served.client.post("/exports", json=body, headers=auth)
        assert posted.status_code == 202, posted.text
        location = posted.headers["location"]
        deadline = time.monotonic() + 30
        while True:
            export = served.client.get(location, headers=auth).json()
            if export["status"] not in {"pending", "running"} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        poller.stop()
    assert export["status"] == "succeeded", export
    download = httpx.get(export["download_url"])  # what curl does with the printed URL
    assert download.status_code == 200
    assert export["file_name"] in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.text, newline="")))
    assert rows[0][0] == "attempt_id"
    assert len(rows) - 1 == export["row_count"]

"""SQS queues in moto, delivered to their consumer functions as Lambda's event
source mapping does: long polls of up to ``batch_size`` messages, each batch
one invocation with an SQS event, the messages the function reports in
``batchItemFailures`` (or all of them, when it raises) left on the queue to come
back after the visibility timeout, the others deleted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"


def queue_arn(queue_url: str) -> str:
    """The ARN of a moto queue (its account id is moto's)."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    account = queue_url.rstrip("/").rsplit("/", 2)[-2]
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def sqs_event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """The Lambda event for messages as ``receive_message`` returned them."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def create_queue(sqs: Any, name: str, *, visibility_timeout: int, max_receives: int) -> str:
    """A queue with its dead-letter queue and redrive policy, as the template has
    them; returns the queue's URL."""
    import json

    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(dlq_url), "maxReceiveCount": str(max_receives)}
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]


def deliver_once(
    sqs: Any,
    queue_url: str,
    invoke: Callable[[dict[str, Any]], Any],
    *,
    batch_size: int = 1,
    wait_seconds: int = 0,
) -> int:
    """One poll and, if it found messages, one invocation; returns how many."""
    found = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not found:
        return 0
    try:
        answer = invoke(sqs_event(found, queue_arn(queue_url)))
        failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
    except Exception:
        failed = {m["MessageId"] for m in found}  # the whole batch comes back
    for message in found:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(found)


@dataclass
class Poller:
    """A thread delivering one queue's messages to ``invoke`` until stopped."""

    sqs: Any
    queue_url: str
    invoke: Callable[[dict[str, Any]], Any]
    batch_size: int = 1
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Poller:
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_once(
                    self.sqs,
                    self.queue_url,
                    self.invoke,
                    batch_size=self.batch_size,
                    wait_seconds=1,
                )
            except Exception:  # the queue went away (shutdown): poll again or stop
                self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# A failed message comes back after the queue's visibility timeout: locally
# within seconds rather than the deployed hour and a half.
LOCAL_VISIBILITY_SECONDS = 30


@dataclass
class LocalQueues:
    """The template's queues in moto, and what delivers their messages."""

    urls: dict[str, str]  # logical id -> queue URL
    environment: dict[str, str]  # function variables that name a queue, resolved
    mappings: list[tuple[str, str, int]]  # (queue logical id, function logical id, batch size)
    pollers: list[Poller] = field(default_factory=list)

    def deliver(self, sqs: Any, invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        """Start delivering each mapped queue to its function as Lambda would."""
        for queue, function, batch_size in self.mappings:
            poller = Poller(
                sqs, self.urls[queue], lambda e, f=function: invoke(f, e), batch_size=batch_size
            )
            self.pollers.append(poller.start())

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()


def _ref(value: Any, key: str) -> str | None:
    if isinstance(value, dict) and key in value:
        found = value[key]
        return found[0] if isinstance(found, list) else str(found).split(".", 1)[0]
    return None


def start_queues(template: dict[str, Any], sqs: Any) -> LocalQueues:
    """Create every SQS queue of the template in moto (dead-letter queues and
    redrive policies included) and find what consumes each."""
    import json

    from dev.template import resources

    queues = resources(template, "AWS::SQS::Queue")
    urls = {
        logical_id: sqs.create_queue(QueueName=f"practice-local-{logical_id}")["QueueUrl"]
        for logical_id in queues
    }
    for logical_id, props in queues.items():
        visibility = min(int(props.get("VisibilityTimeout", 30)), LOCAL_VISIBILITY_SECONDS)
        attributes = {"VisibilityTimeout": str(visibility)}
        redrive = props.get("RedrivePolicy") or {}
        target = _ref(redrive.get("deadLetterTargetArn"), "Fn::GetAtt")
        if target in urls:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queue_arn(urls[target]),
                    "maxReceiveCount": str(redrive.get("maxReceiveCount", 5)),
                }
            )
        sqs.set_queue_attributes(QueueUrl=urls[logical_id], Attributes=attributes)
    environment = {}
    mappings = []
    for function_id, props in resources(template, "AWS::Serverless::Function").items():
        variables = (props.get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            if _ref(value, "Ref") in urls:
                environment[name] = urls[_ref(value, "Ref")]
        for event in (props.get("Events") or {}).values():  # SAM's own SQS events
            if event.get("Type") == "SQS":
                queue = _ref(event["Properties"].get("Queue"), "Fn::GetAtt")
                size = int(event["Properties"].get("BatchSize", 10))
                mappings.append((queue, function_id, size))
    for props in resources(template, "AWS::Lambda::EventSourceMapping").values():
        queue = _ref(props.get("EventSourceArn"), "Fn::GetAtt")
        function = _ref(props.get("FunctionName"), "Ref")
        if queue in urls and function:
            mappings.append((queue, function, int(props.get("BatchSize", 10))))
    return LocalQueues(urls, environment, mappings)


def sqs_for(endpoint: str) -> Any:
    """An SQS client of moto at ``endpoint`` (dummy credentials)."""
    import boto3

    from dev.moto_server import DUMMY_CREDENTIALS

    credentials = {k.lower(): v for k, v in DUMMY_CREDENTIALS.items()}
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **credentials)

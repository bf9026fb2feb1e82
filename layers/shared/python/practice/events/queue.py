"""Functions fed by an SQS queue, on Powertools' batch processing.

Each record is handled on its own; the handler answers Lambda's partial batch
response, so one failed message is redelivered without the ones that
succeeded. A failure is one of two kinds:

- transient (the database is unavailable, a timeout): raised as is, the
  message comes back after the queue's visibility timeout and is tried again;
- ``Permanent`` (the message can never succeed: malformed, its subject gone):
  logged with its reason and counted, and left to the queue's redrive policy,
  which moves it to the dead-letter queue once its receives run out.

Every record is logged under its message id as the correlation id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from practice.core.runtime import entry_point, logger, metrics

type RecordHandler = Callable[[SQSRecord], None]


class Permanent(Exception):
    """A message that can never succeed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _first_message_id(event: Any) -> str | None:
    records = event.get("Records") if isinstance(event, dict) else None
    return records[0].get("messageId") if records else None


def consume_queue(
    handle: RecordHandler, *, budget_seconds: float
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of a queue consumer that handles each record with ``handle``."""
    processor = BatchProcessor(event_type=EventType.SQS)

    def one(record: SQSRecord) -> None:
        logger.set_correlation_id(record.message_id)
        try:
            handle(record)
        except Permanent as failure:
            logger.error(
                "message will not succeed; left to the dead-letter queue",
                extra={"message_id": record.message_id, "reason": failure.reason},
            )
            metrics.add_metric(name="PermanentFailures", unit=MetricUnit.Count, value=1)
            raise
        except Exception:
            logger.exception("message failed; it will be delivered again")
            metrics.add_metric(name="TransientFailures", unit=MetricUnit.Count, value=1)
            raise

    @entry_point(budget_seconds=budget_seconds, correlation_id=_first_message_id)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(
            event=event, record_handler=one, processor=processor, context=context
        )

    return handler

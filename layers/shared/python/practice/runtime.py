"""The one wrapper around every Lambda entry point (HTTP, schedule, queue):
Powertools Logger with the correlation id, Tracer, Metrics with the cold-start
metric, and the logging of anything that escapes the handler.

Request bodies are never logged: they carry trainees' answers and transcripts.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from practice.budget import request_budget

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "practice")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Practice"), service=SERVICE)
tracer = Tracer(service=SERVICE)

type Handler = Callable[[Any, Any], Any]


def count_unhandled_error() -> None:
    """Record one error that no domain rule explained (the alarm watches it)."""
    metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)


def entry_point(
    *, budget_seconds: float, correlation_id_path: str | None = None
) -> Callable[[Handler], Handler]:
    """Wrap a Lambda handler with the shared logging, tracing, metrics and the
    request's time budget (``budget_seconds``, less when the invocation has less).

    ``correlation_id_path`` is a JMESPath into the event (Powertools'
    ``correlation_paths``) whose value tags every log line of the invocation.
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def logged(event: Any, context: Any) -> Any:
            try:
                with request_budget(context, budget_seconds):
                    return handler(event, context)
            except Exception:
                logger.exception("unhandled error")
                count_unhandled_error()
                raise

        traced = tracer.capture_lambda_handler(capture_response=False)(logged)
        measured = metrics.log_metrics(capture_cold_start_metric=True)(traced)
        return logger.inject_lambda_context(
            correlation_id_path=correlation_id_path, clear_state=True
        )(measured)

    return wrap

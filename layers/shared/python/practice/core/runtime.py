"""The one wrapper around every Lambda entry point (HTTP, schedule, queue):
Powertools Logger with the correlation id, Tracer, Metrics with the cold-start
metric, and the logging of anything that escapes the handler.

Request bodies are never logged: they carry trainees' answers and transcripts.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from practice.core.budget import request_budget

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "practice")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Practice"), service=SERVICE)
# Every metric names the function (Lambda sets its name): the template's alarms
# watch each function's own UnhandledErrors and Unavailable.
FUNCTION_NAME = os.getenv("AWS_LAMBDA_FUNCTION_NAME", "local")
metrics.set_default_dimensions(function_name=FUNCTION_NAME)


def tracing_enabled() -> bool:
    """True where X-Ray records this function: ``Tracing: Active`` in Lambda (its
    daemon address is set), not switched off with POWERTOOLS_TRACE_DISABLED, and
    not where Powertools itself would not trace (outside Lambda, or SAM local)."""
    disabled = os.getenv("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true", "yes"}
    in_lambda = bool(os.getenv("LAMBDA_TASK_ROOT")) and not os.getenv("AWS_SAM_LOCAL")
    return bool(os.getenv("AWS_XRAY_DAEMON_ADDRESS")) and in_lambda and not disabled


def _metrics_enabled() -> bool:
    # Powertools prints the ColdStart line even with POWERTOOLS_METRICS_DISABLED
    # (its single_metric ignores the setting), so the wrapper does not ask for it.
    return os.getenv("POWERTOOLS_METRICS_DISABLED", "").lower() not in {"1", "true", "yes"}


def _traced(handler: Handler) -> Handler:
    # The X-Ray SDK costs a cold start about 0.15 s (it builds a botocore
    # session); it is imported only where a trace is recorded.
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE).capture_lambda_handler(capture_response=False)(handler)


type Handler = Callable[[Any, Any], Any]


def count_unhandled_error() -> None:
    """Record one error that no domain rule explained (a 500; an alarm pages on it)."""
    metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)


def count_unavailable() -> None:
    """Record one answer that a dependency was down (a 503; an alarm pages on many)."""
    metrics.add_metric(name="Unavailable", unit=MetricUnit.Count, value=1)


def entry_point(
    *, budget_seconds: float, correlation_id: Callable[[Any], str | None] | None = None
) -> Callable[[Handler], Handler]:
    """Wrap a Lambda handler with the shared logging, tracing, metrics and the
    request's time budget (``budget_seconds``, less when the invocation has less).

    ``correlation_id(event)`` finds the id that tags every log line of the
    invocation. A plain function rather than Powertools' JMESPath
    ``correlation_id_path``: evaluating the expression cost every request more
    than the lookup it stands for.
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def logged(event: Any, context: Any) -> Any:
            if correlation_id is not None:
                logger.set_correlation_id(correlation_id(event))
            try:
                with request_budget(context, budget_seconds):
                    return handler(event, context)
            except Exception:
                logger.exception("unhandled error")
                count_unhandled_error()
                raise

        measured = metrics.log_metrics(capture_cold_start_metric=_metrics_enabled())(
            _traced(logged)
        )
        # The handler is defined last (functions/*/app.py), so init is done: what
        # it made lives as long as the container. Frozen, it is left out of the
        # cyclic collector's full collections, which would otherwise walk all of
        # it inside some request (bench startup shows the cost).
        gc.freeze()
        return logger.inject_lambda_context(clear_state=True)(measured)

    return wrap

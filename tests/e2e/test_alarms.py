"""An unhandled error pages someone: each function, forced into an error no rule
explains, emits UnhandledErrors under its own function name (EMF on stdout, as
CloudWatch reads it), and the template's alarm for that function watches
exactly that metric, dimensions included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dev.template import Resolver, load_template, resources
from tests.conftest import MigratedDatabase
from tests.support import World

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "practice"  # POWERTOOLS_SERVICE_NAME in the template's globals
NAMESPACE = "Practice"  # POWERTOOLS_METRICS_NAMESPACE there

# In a child: the metrics' function dimension is read when the layer is imported,
# as each Lambda function is its own process.
_CHILD = """
import json, sys
from dev.invoke import LambdaContext
from tests.support import http_event

function, claims = sys.argv[1], json.loads(sys.argv[2])


def fail(*_args, **_kwargs):
    raise RuntimeError("forced")


if function == "attempts":
    import functions.attempts.app as app
    app.attempts.state = fail
    event = http_event("GET", "/attempts/00000000-0000-4000-8000-000000000000", claims=claims,
                       route="/attempts/{attemptId}",
                       path_parameters={"attemptId": "00000000-0000-4000-8000-000000000000"})
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
elif function == "batch":
    import functions.batch.app as app
    app.batch.run = fail
    body = {"operation": "multiple_states", "data": ["00000000-0000-4000-8000-000000000000"]}
    event = http_event("POST", "/attempts/batch", claims=claims, body=body)
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
elif function == "exports":
    import functions.exports.app as app
    app.exports.page = fail
    event = http_event("GET", "/exports", claims=claims)
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
elif function == "exports-worker":
    import functions.exports.app as app
    # Not an export's message: the batch (all of it) fails and the invocation raises.
    records = {"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": "{}",
                            "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                            "eventSource": "aws:sqs", "eventSourceARN": "arn:q",
                            "awsRegion": "us-east-1"}]}
    try:
        app.worker(records, LambdaContext())
    except Exception:
        print(json.dumps({"answer": "failed"}))
elif function == "webhooks":
    import functions.webhooks.app as app
    app.webhooks.receive_vapi = fail
    event = http_event("POST", "/webhooks/vapi", body={"message": {"type": "hang"}})
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
elif function == "refresh":
    import functions.refresh.app as app
    app.refresh.run = fail
    event = http_event("POST", "/reports/refresh", claims=claims, body={})
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
elif function == "reports":
    import functions.reports.app as app
    app.reports.me = fail
    event = http_event("GET", "/reports/me", claims=claims)
    print(json.dumps({"answer": app.handler(event, LambdaContext())["statusCode"]}))
else:
    import importlib
    app = importlib.import_module(f"functions.{function}.app")
    try:
        app.handler({"job": "no-such-job"}, LambdaContext())
    except ValueError:
        print(json.dumps({"answer": "failed"}))
app.db.close()
"""

FUNCTIONS = {
    "attempts": "AttemptsFunction",
    "batch": "BatchFunction",
    "maintenance": "MaintenanceFunction",
    "exports": "ExportsFunction",
    "exports-worker": "ExportsWorkerFunction",
    "webhooks": "WebhooksFunction",
    "webhook_retry": "WebhookRetryFunction",
    "refresh": "RefreshFunction",
    "reports": "ReportsFunction",
}


def _metrics(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_unexpected_error_emits_unhandled_errors_under_the_functions_name(
    database: MigratedDatabase, world: World, function: str
) -> None:
    name = f"practice-test-{function}"
    environment = {
        key: value for key, value in os.environ.items() if key != "POWERTOOLS_METRICS_DISABLED"
    } | {
        "PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}",
        "PRACTICE_DATABASE_URL": database.app_url,
        "POWERTOOLS_SERVICE_NAME": SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "AWS_LAMBDA_FUNCTION_NAME": name,
    }
    claims = world.users["trainee_a1"].claims()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, function, json.dumps(claims)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = [json.loads(line) for line in done.stdout.splitlines() if '"answer"' in line]
    failed = function in {"maintenance", "exports-worker", "webhook_retry"}
    assert answers == [{"answer": "failed" if failed else 500}]
    emitted = [
        document
        for document in _metrics(done.stdout)
        if "UnhandledErrors" in document
        and document["function_name"] == name
        and document["service"] == SERVICE
    ]
    assert emitted, done.stdout
    (directive,) = emitted[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert sorted(directive["Dimensions"][0]) == ["function_name", "service"]


def test_each_functions_alarm_watches_the_metric_it_emits() -> None:
    template = load_template()
    resolver = Resolver(template)
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_METRICS_NAMESPACE"]) == (
        SERVICE,
        NAMESPACE,
    )
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for logical_id in resources(template, "AWS::Serverless::Function"):
        watching = [
            props
            for props in alarms.values()
            if props.get("MetricName") == "UnhandledErrors"
            and {"Name": "function_name", "Value": {"Ref": logical_id}} in props["Dimensions"]
        ]
        assert len(watching) == 1, logical_id
        (alarm,) = watching
        assert alarm["Namespace"] == NAMESPACE
        assert {"Name": "service", "Value": SERVICE} in alarm["Dimensions"]
        assert resolver.resolve(alarm["Threshold"]) == 1

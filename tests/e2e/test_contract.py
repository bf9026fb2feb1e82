"""The published contract holds: schemathesis generates requests from the attempts
function's own `/openapi.json` and every answer must be documented (status,
media type, headers, body schema) and never a 5xx.

Requests travel as API Gateway payload-2.0 events into the Lambda handler, as a
trainee of the test world; half of the attempt routes are pointed at attempts
that exist, so the generated bodies reach the domain instead of stopping at 404.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import LambdaContext, User, World, http_event

EXAMPLES_PER_OPERATION = 40
ATTEMPT_ROUTE = "/attempts/{attemptId}"

# The headers API Gateway sets itself, or that http_event writes from the body.
_OWN_HEADERS = {"host", "content-type", "content-length"}


class LambdaAsWsgi:
    """A WSGI app that turns each request into a payload-2.0 event with the
    caller's JWT claims and answers what the Lambda handler returns."""

    def __init__(self, handler: Callable[[dict, Any], dict], caller: User) -> None:
        self.handler = handler
        self.caller = caller

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Serve one request through the handler."""
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in _OWN_HEADERS
        }
        parts = path.strip("/").split("/")
        routed = len(parts) == 2 and parts[0] == "attempts" and parts[1] != "batch"
        event = http_event(
            environ["REQUEST_METHOD"],
            path,
            user=self.caller,
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            body=raw.decode("latin-1") if raw else None,
            headers=headers,
            route=ATTEMPT_ROUTE if routed else path,
            path_parameters={"attemptId": parts[1]} if routed else None,
        )
        if raw:  # the bytes exactly as sent, whatever their encoding
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        result = self.handler(event, LambdaContext())
        body = result.get("body") or ""
        content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        status = result["statusCode"]
        start_response(f"{status} -", list((result.get("headers") or {}).items()))
        return [content]


@pytest.fixture(scope="module")
def attempt_ids(attempts_app, world: World) -> itertools.cycle:
    """A supply of the trainee's own attempts, started through the service."""
    from practice.attempts.models import StartAttempt
    from practice.identity import Principal, Role

    trainee = world.users["trainee_a1"]
    principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
    body = StartAttempt(scenario_id=world.scenarios["a"])
    return itertools.cycle([str(attempts_app.attempts.start(principal, body).id) for _ in range(8)])


@pytest.fixture(scope="module")
def attempts_contract(attempts_app, world: World) -> Any:
    """The attempts function's published contract, served by its own handler."""
    wsgi = LambdaAsWsgi(attempts_app.handler, world.users["trainee_a1"])
    return schemathesis.openapi.from_wsgi("/openapi.json", wsgi)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_every_answer_is_documented_and_none_is_a_server_error(
    attempts_contract: Any, attempt_ids: itertools.cycle
) -> None:
    # Operation by operation through schemathesis' Python API (its pytest
    # plugin's lazy loading does not run under this pytest).
    operations = [result.ok() for result in attempts_contract.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:

        @given(case=operation.as_strategy(), existing=st.booleans())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def keeps_the_contract(case: Any, existing: bool) -> None:
            if existing and case.path_parameters and "attemptId" in case.path_parameters:
                case.path_parameters["attemptId"] = next(attempt_ids)
            case.call_and_validate(checks=CHECKS)

        keeps_the_contract()


@pytest.fixture(scope="module")
def batch_contract(batch_app, world: World) -> Any:
    """The batch function's published contract, served by its own handler."""
    wsgi = LambdaAsWsgi(batch_app.handler, world.users["trainee_a1"])
    return schemathesis.openapi.from_wsgi("/attempts/batch/openapi.json", wsgi)


def test_every_batch_answer_is_documented_and_none_is_a_server_error(
    batch_contract: Any, attempt_ids: itertools.cycle
) -> None:
    (operation,) = [result.ok() for result in batch_contract.get_all_operations()]

    @given(case=operation.as_strategy(), existing=st.booleans())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION * 2,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def keeps_the_contract(case: Any, existing: bool) -> None:
        # Half of the batches name attempts that exist, so items reach the rules.
        data = case.body.get("data") if isinstance(case.body, dict) else None
        if existing and isinstance(data, list):
            for index, item in enumerate(data):
                if isinstance(item, dict) and "attempt_id" in item:
                    item["attempt_id"] = next(attempt_ids)
                elif isinstance(item, str):
                    data[index] = next(attempt_ids)
        case.call_and_validate(checks=CHECKS)

    keeps_the_contract()


def test_the_contract_documents_bodies_errors_and_the_bearer_scheme(attempts_app) -> None:
    document = attempts_app.app.openapi()
    assert document["components"]["securitySchemes"]["clerkJwt"]["scheme"] == "bearer"
    patch = document["paths"][ATTEMPT_ROUTE]["patch"]
    assert patch["security"] == [{"clerkJwt": []}]
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in body["anyOf"]} == {"SaveAttempt", "Optimize"}
    for status in ("401", "403", "404", "409", "413", "422", "428", "503"):
        media = patch["responses"][status]["content"]
        assert list(media) == ["application/problem+json"], status
    assert "security" not in document["paths"]["/health"]["get"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in {"post", "patch"}:
                assert "requestBody" in operation, (method, path)

"""The published contracts hold, checked by a tool nobody here wrote:
schemathesis, with its default checks, generates requests from each function's
own document and sends them over HTTP through the local gateway (its JWT
authorizer and limits, as API Gateway answers them) with a real token. Any
5xx, any answer, media type, header or body the document does not describe, any
request the document allows that is refused, or forbids that is accepted, and
any operation that does not enforce its authentication fails the test.

Two choices of the test, each for a reason of the server's state rather than
of the request's shape: half of the generated attempt ids are replaced with
attempts that exist (else every case stops at 404), at a high version (so a
generated If-Match rarely names theirs by chance); and a generated
Idempotency-Key is replaced with a fresh one, since a key reused with another
request is refused by design (422, as the IETF draft asks). A third, for an
export's period: a generated `to` before `from`, or further from it than the
server's longest period (a setting), is set to `from`; JSON Schema cannot
relate two fields, and the document says both rules in words.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practice.core.config import Settings
from tests.conftest import MigratedDatabase
from tests.e2e.conftest import Served
from tests.support import World

EXAMPLES_PER_OPERATION = 30
LONGEST_EXPORT_DAYS = Settings().export_max_span_days
DOCUMENTS = {
    "attempts": "/openapi.json",
    "batch": "/attempts/batch/openapi.json",
    "exports": "/exports/openapi.json",
    "webhooks": "/webhooks/openapi.json",
    "refresh": "/reports/refresh/openapi.json",
    "reports": "/reports/openapi.json",
}

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def attempt_ids(database: MigratedDatabase, world: World) -> itertools.cycle:
    """Attempts of the caller, in progress, at version 1000."""
    trainee = world.users["trainee_a1"]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "insert into scenario_attempts (org_id, clerk_user_id, scenario_id, version)"
            " select %s, %s, %s, 1000 from generate_series(1, 12) returning id",
            [trainee.org_id, trainee.user_id, world.scenarios["a"]],
        ).fetchall()
    return itertools.cycle([str(row[0]) for row in rows])


def _within_the_longest_period(case: Any) -> None:
    filters = case.body.get("filters") if isinstance(case.body, dict) else None
    if not isinstance(filters, dict):
        return
    try:
        start, end = date.fromisoformat(filters["from"]), date.fromisoformat(filters["to"])
    except (KeyError, TypeError, ValueError):
        return
    if not 0 <= (end - start).days < LONGEST_EXPORT_DAYS:
        filters["to"] = filters["from"]


def _existing(case: Any, attempt_ids: itertools.cycle) -> None:
    if case.path_parameters and "attemptId" in case.path_parameters:
        case.path_parameters["attemptId"] = next(attempt_ids)
    data = case.body.get("data") if isinstance(case.body, dict) else None
    if isinstance(data, list):
        for index, item in enumerate(data):
            if isinstance(item, dict) and "attempt_id" in item:
                item["attempt_id"] = next(attempt_ids)
            elif isinstance(item, str):
                data[index] = next(attempt_ids)


@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_the_contract_holds_under_schemathesis_default_checks(
    served: Served, world: World, attempt_ids: itertools.cycle, document: str
) -> None:
    trainee = world.users["trainee_a1"]
    token = served.token(trainee.clerk_org_id, trainee.user_id, "trainee")
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(served.url + DOCUMENTS[document])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations

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
            if existing:
                _existing(case, attempt_ids)
            _within_the_longest_period(case)
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = f"contract-{uuid.uuid4()}"
            case.call_and_validate(base_url=served.url, headers=auth)

        keeps_the_contract()

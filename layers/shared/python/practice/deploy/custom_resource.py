"""A CloudFormation custom resource's protocol: read the request, do the work, and
always answer: a JSON document PUT to the request's presigned ``ResponseURL``.

CloudFormation waits for that answer (up to the resource's ServiceTimeout), not for
the Lambda's return, so every path, a crash included, ends in one PUT; a FAILED
answer's ``Reason`` is what the stack events show.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# The whole answer must stay under 4,096 bytes; the reason gets most of it.
_REASON_LIMIT = 2_000
_PUT_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Request:
    """The fields of a custom resource request the work may need."""

    request_type: str  # Create | Update | Delete
    logical_id: str
    physical_id: str | None  # None on Create
    properties: Mapping[str, Any]
    old_properties: Mapping[str, Any]

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Request:
        return cls(
            request_type=str(event["RequestType"]),
            logical_id=str(event["LogicalResourceId"]),
            physical_id=event.get("PhysicalResourceId"),
            properties=event.get("ResourceProperties") or {},
            old_properties=event.get("OldResourceProperties") or {},
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the work returns: the resource's id and the attributes ``Fn::GetAtt`` reads."""

    physical_id: str
    data: Mapping[str, str]
    reason: str = "done"


def answer(
    event: Mapping[str, Any],
    status: str,
    reason: str,
    physical_id: str,
    data: Mapping[str, str] | None = None,
) -> None:
    """PUT the answer to the ResponseURL, retrying briefly: without it the stack
    waits out the ServiceTimeout."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:_REASON_LIMIT],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": dict(data or {}),
        }
    ).encode()
    url = str(event["ResponseURL"])
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP ResponseURL: {url[:40]!r}")
    # The presigned URL was signed without a content type: send none.
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(1, _PUT_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - CloudFormation's URL
                response.read()
            return
        except OSError:
            if attempt == _PUT_ATTEMPTS:
                raise
            logger.warning("answering CloudFormation failed; retrying", exc_info=True)
            time.sleep(0.5 * attempt)


def run(event: Mapping[str, Any], work: Callable[[Request], Outcome]) -> dict[str, str]:
    """Do ``work`` for the request and answer CloudFormation: SUCCESS with its
    outcome, or FAILED with the error in the Reason (a failed Create still names a
    physical id, so the Delete of its rollback can be answered)."""
    request = Request.of(event)
    fallback_id = (
        request.physical_id or f"{event['StackId'].rsplit('/', 1)[-1]}-{request.logical_id}"
    )
    try:
        outcome = work(request)
    except Exception as error:  # every failure must reach CloudFormation
        logger.exception("custom resource %s failed", request.request_type)
        reason = f"{type(error).__name__}: {error}".strip()
        answer(event, "FAILED", reason, fallback_id)
        return {"Status": "FAILED", "Reason": reason}
    answer(event, "SUCCESS", outcome.reason, outcome.physical_id, outcome.data)
    return {"Status": "SUCCESS", "Reason": outcome.reason}

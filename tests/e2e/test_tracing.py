"""The production path with tracing on (`Tracing: Active` in template.yaml): the
attempts function imported as Lambda imports it, with X-Ray's daemon address set,
sends the daemon its handler's subsegment under the invocation's trace."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MigratedDatabase

ROOT = Path(__file__).resolve().parents[2]

# In a child: the tracer is built when app.py is imported, from the environment
# it finds then, and this process imported the function with tracing off.
# The Lambda runtime sets each invocation's trace header just before it calls
# the handler (it is not set during init), so the child does the same.
_CHILD = """
import json, os, sys
import functions.attempts.app as app
from dev.invoke import LambdaContext
from tests.support import http_event

responses = []
for trace_header in sys.argv[1:]:
    os.environ["_X_AMZN_TRACE_ID"] = trace_header
    responses.append(app.handler(http_event("GET", "/health"), LambdaContext()))
app.db.close()
print(json.dumps(responses))
"""

SERVICE = "practice"  # POWERTOOLS_SERVICE_NAME in the template's globals


def _trace() -> tuple[str, str]:
    """A trace id and the id of Lambda's own segment, shaped as X-Ray makes them."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}", secrets.token_hex(8)


def _received(daemon: socket.socket, name: str, count: int) -> list[dict[str, Any]]:
    """The segment documents the daemon's socket holds, read until ``count`` of
    them are named ``name``; a datagram that is not the daemon protocol fails."""
    documents: list[dict[str, Any]] = []
    daemon.settimeout(5)  # the child has exited: what it sent is already queued
    while sum(d.get("name") == name for d in documents) < count:
        try:
            datagram = daemon.recv(65536)
        except TimeoutError:
            pytest.fail(f"the daemon got {len(documents)} documents, not {count} named {name!r}")
        header, newline, body = datagram.partition(b"\n")
        assert newline, datagram
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))
    return [d for d in documents if d.get("name") == name]


def test_a_traced_invocation_sends_the_handlers_subsegment_to_the_daemon(
    database: MigratedDatabase,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in {"POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "_X_AMZN_TRACE_ID"}
        } | {
            "PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}",
            "PRACTICE_DATABASE_URL": database.app_url,
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            # What Lambda sets under Tracing: Active.
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            # Without it Powertools' Tracer switches itself off as "outside Lambda",
            # and the X-Ray SDK keeps segments of its own instead of attaching to
            # the facade segment of Lambda's trace header (and streaming at once).
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "attempts"),
        }
        traces = [_trace(), _trace()]
        headers = [f"Root={root};Parent={parent};Sampled=1" for root, parent in traces]
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, *headers],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # Metrics print their EMF lines on stdout before the child's own last line.
        responses = json.loads(done.stdout.splitlines()[-1])
        assert [(r["statusCode"], json.loads(r["body"])) for r in responses] == [
            (200, {"status": "ok"})
        ] * 2
        subsegments = _received(daemon, "## handler", count=2)

    # One per invocation, each under its own trace (nothing leaks from the first
    # into the second), the first one the cold start.
    subsegments.sort(key=lambda d: d["start_time"])
    for index, (document, (root, parent)) in enumerate(zip(subsegments, traces, strict=True)):
        assert document["type"] == "subsegment"
        assert (document["trace_id"], document["parent_id"]) == (root, parent)
        assert document["annotations"] == {"ColdStart": index == 0, "Service": SERVICE}
        assert document["in_progress"] is False
        assert document["start_time"] <= document["end_time"]
        assert not {"fault", "error", "cause"} & set(document), document
        # capture_response=False: a response body (trainees' answers) is never recorded.
        assert "metadata" not in document

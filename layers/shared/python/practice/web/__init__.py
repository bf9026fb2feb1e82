"""HTTP plumbing of the functions behind API Gateway: the only package that knows HTTP."""

from practice.web.app import create_app, json_response
from practice.web.body import read_body, read_json, validate_body
from practice.web.caller import Callers
from practice.web.etags import etag, etag_matches, expected_version
from practice.web.handler import create_handler, ensure_event_loop
from practice.web.params import In, RouteParams, parameters, read_params
from practice.web.problems import PROBLEM_JSON, json_body, problem_responses, request_body

__all__ = [
    "PROBLEM_JSON",
    "Callers",
    "In",
    "RouteParams",
    "create_app",
    "create_handler",
    "ensure_event_loop",
    "etag",
    "etag_matches",
    "expected_version",
    "json_body",
    "json_response",
    "parameters",
    "problem_responses",
    "read_body",
    "read_json",
    "read_params",
    "request_body",
    "validate_body",
]

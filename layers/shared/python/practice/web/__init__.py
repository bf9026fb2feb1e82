"""HTTP plumbing of the functions behind API Gateway: the only package that knows HTTP."""

from practice.web.app import create_api
from practice.web.caller import PrincipalOf
from practice.web.etags import etag, etag_matches, expected_version
from practice.web.handler import create_handler, ensure_event_loop
from practice.web.params import In, RouteParams
from practice.web.problems import PROBLEM_JSON
from practice.web.routes import ETAG, LOCATION, Api, Call, Reply, Router

__all__ = [
    "ETAG",
    "LOCATION",
    "PROBLEM_JSON",
    "Api",
    "Call",
    "In",
    "PrincipalOf",
    "Reply",
    "RouteParams",
    "Router",
    "create_api",
    "create_handler",
    "ensure_event_loop",
    "etag",
    "etag_matches",
    "expected_version",
]

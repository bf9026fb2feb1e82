"""The local gateway's translations, without sockets: HTTP request → API Gateway
payload-2.0 event, function result → HTTP response, route matching, the JWT
authorizer and CORS, all against a stub function runtime."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from dev import tokens
from dev.gateway import (
    Cors,
    Gateway,
    HttpRequest,
    InvalidResponse,
    JwtAuthorizer,
    RouteTable,
    build_event,
    request_time,
    stringify_claims,
    translate_response,
)
from dev.invoke import FunctionError, FunctionRuntime
from dev.template import Function, Resolver, Route, functions, load_template
from practice.core.identity import Identity, Role, identity_from_claims

ISSUER = "https://clerk.test.local"
AUDIENCE = "practice-api"


def _request(target: str = "/", method: str = "GET", **kwargs: Any) -> HttpRequest:
    headers = kwargs.pop("headers", [("Host", "127.0.0.1:3000")])
    return HttpRequest(method=method, target=target, headers=headers, **kwargs)


# ---------------------------------------------------------------------------
# request → event
# ---------------------------------------------------------------------------


def test_event_envelope_matches_payload_2_0() -> None:
    request = _request(
        "/health",
        headers=[("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8.5")],
        source_ip="10.1.2.3",
    )
    event = build_event(request, route_key="GET /health", request_id="rid-1", now=1583348638.390)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /health"
    assert event["rawPath"] == "/health"
    assert event["rawQueryString"] == ""
    assert event["isBase64Encoded"] is False
    for absent in ("body", "pathParameters", "queryStringParameters", "cookies"):
        assert absent not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/health",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3",
        "userAgent": "curl/8.5",
    }
    assert context["routeKey"] == "GET /health"
    assert context["stage"] == "$default"
    assert context["requestId"] == "rid-1"
    assert context["time"] == "04/Mar/2020:19:03:58 +0000"
    assert context["timeEpoch"] == 1583348638390
    assert context["domainName"] == "127.0.0.1"
    assert context["accountId"] == "123456789012"
    assert context["apiId"]
    assert "authorizer" not in context  # a route without auth


def test_request_id_defaults_to_a_uuid() -> None:
    event = build_event(_request("/x"), route_key="GET /x")
    uuid.UUID(event["requestContext"]["requestId"])


def test_request_time_format_is_locale_free() -> None:
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", request_time(0))
    assert request_time(0) == "01/Jan/1970:00:00:00 +0000"


def test_headers_lower_cased_and_repeats_joined_by_commas() -> None:
    request = _request(
        headers=[
            ("Host", "localhost:3000"),
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("Accept", "application/json"),
        ]
    )
    headers = build_event(request, route_key="GET /")["headers"]
    assert headers["x-custom"] == "one,two"
    assert headers["accept"] == "application/json"
    assert headers["host"] == "localhost:3000"
    assert all(name == name.lower() for name in headers)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-port"] == "3000"
    assert headers["x-forwarded-proto"] == "http"


def test_cookies_split_into_a_list_and_removed_from_headers() -> None:
    request = _request(
        headers=[("Host", "h"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3")],
    )
    event = build_event(request, route_key="GET /")
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]


def test_query_string_raw_and_parameters_joined_by_commas() -> None:
    event = build_event(_request("/a?x=1&x=2&y=hello%20world&empty="), route_key="GET /a")
    assert event["rawQueryString"] == "x=1&x=2&y=hello%20world&empty="
    assert event["queryStringParameters"] == {"x": "1,2", "y": "hello world", "empty": ""}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/problem+json",
    ],
)
def test_text_bodies_pass_as_text(content_type: str) -> None:
    request = _request(
        method="POST",
        headers=[("Host", "h"), ("Content-Type", content_type)],
        body=b'{"a": "\xc3\xa9"}',
    )
    event = build_event(request, route_key="POST /")
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"a": "é"}'


@pytest.mark.parametrize(
    "content_type",
    ["audio/mpeg", "application/octet-stream", "multipart/form-data; boundary=x", None],
)
def test_binary_bodies_are_base64(content_type: str | None) -> None:
    payload = bytes(range(256))
    headers = [("Host", "h")] + ([("Content-Type", content_type)] if content_type else [])
    event = build_event(_request(method="PUT", headers=headers, body=payload), route_key="PUT /")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_claims_rendered_as_api_gateway_does() -> None:
    claims = {
        "sub": "user_1",
        "exp": 1718722804,
        "fva": [0, -1],
        "roles": ["a", "b"],
        "email_verified": True,
        "v": 2,
        "o": {"id": "org_a", "rol": "admin", "slg": "acme"},
    }
    rendered = stringify_claims(claims)
    assert rendered["sub"] == "user_1"
    assert rendered["exp"] == "1718722804"
    assert rendered["fva"] == "[0 -1]"
    assert rendered["roles"] == "[a b]"
    assert rendered["email_verified"] == "true"
    assert rendered["v"] == "2"
    assert json.loads(rendered["o"]) == claims["o"]
    assert all(isinstance(value, str) for value in rendered.values())
    # and the application's parser reads them back
    assert identity_from_claims(rendered) == Identity("user_1", "org_a", Role.ADMIN)


def test_authorizer_block_for_protected_routes() -> None:
    event = build_event(
        _request("/me"), route_key="GET /me", claims={"sub": "user_1", "iat": 1}, scopes=None
    )
    assert event["requestContext"]["authorizer"] == {
        "jwt": {"claims": {"sub": "user_1", "iat": "1"}, "scopes": None}
    }


# ---------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------


def GatewayRoute(method: str, path: str, function: str, authorizer: str | None) -> Route:  # noqa: N802
    """A route of a stub function named ``function``."""
    return Route(Function(function, "functions/x/", "app.handler"), method, path, authorizer)


def _table() -> RouteTable:
    return RouteTable(
        [
            GatewayRoute("GET", "/health", "Fn", None),
            GatewayRoute("GET", "/attempts/{attemptId}", "Fn", "jwt"),
            GatewayRoute("POST", "/attempts/batch", "Batch", "jwt"),
            GatewayRoute("POST", "/attempts/{attemptId}", "Fn", "jwt"),
            GatewayRoute("ANY", "/files/{key+}", "Files", "jwt"),
            GatewayRoute("GET", "/files/{key+}", "FilesGet", "jwt"),
            GatewayRoute("ANY", "/{proxy+}", "Catch", None),
        ]
    )


@pytest.mark.parametrize(
    ("method", "path", "route_key", "params"),
    [
        ("GET", "/health", "GET /health", {}),
        ("GET", "/attempts/abc", "GET /attempts/{attemptId}", {"attemptId": "abc"}),
        ("GET", "/attempts/a%20b", "GET /attempts/{attemptId}", {"attemptId": "a b"}),
        ("POST", "/attempts/batch", "POST /attempts/batch", {}),
        ("POST", "/attempts/7", "POST /attempts/{attemptId}", {"attemptId": "7"}),
        ("DELETE", "/files/a/b/c.wav", "ANY /files/{key+}", {"key": "a/b/c.wav"}),
        ("GET", "/files/a/b", "GET /files/{key+}", {"key": "a/b"}),
        ("PATCH", "/health", "ANY /{proxy+}", {"proxy": "health"}),
        ("GET", "/x/y/z", "ANY /{proxy+}", {"proxy": "x/y/z"}),
    ],
)
def test_route_precedence(method: str, path: str, route_key: str, params: dict) -> None:
    route, found = _table().match(method, path)
    assert route.route_key == route_key
    assert found == params


def test_no_match_without_catch_all() -> None:
    table = RouteTable([GatewayRoute("GET", "/attempts/{attemptId}", "Fn", None)])
    assert table.match("GET", "/attempts") is None
    assert table.match("GET", "/attempts/1/extra") is None
    assert table.match("POST", "/attempts/1") is None
    assert table.match("GET", "/files/") is None


def test_a_route_declared_by_two_functions_is_refused() -> None:
    with pytest.raises(ValueError, match="GET /a"):
        RouteTable([GatewayRoute("GET", "/a", "One", None), GatewayRoute("GET", "/a", "Two", None)])


def test_template_routes_are_all_registered_once() -> None:
    template = load_template()
    gateway = Gateway.from_template(template, keys=tokens.generate_keys())
    declared = {r.route_key: r for fn in functions(template).values() for r in fn.routes}
    assert sorted(r.route_key for r in gateway.routes) == sorted(declared)
    for route in gateway.routes:
        assert route.authorizer == declared[route.route_key].authorizer
        assert route.authorizer is None or route.authorizer in gateway.authorizers


# ---------------------------------------------------------------------------
# result → response
# ---------------------------------------------------------------------------


def test_full_response_with_cookies_and_multi_value_headers() -> None:
    response = translate_response(
        {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-n": 5},
            "multiValueHeaders": {"x-many": ["a", "b"]},
            "cookies": ["s=1; Path=/", "t=2"],
            "body": '{"ok":true}',
            "isBase64Encoded": False,
        }
    )
    assert response.status == 201
    assert response.json() == {"ok": True}
    assert ("x-n", "5") in response.headers
    assert [v for k, v in response.headers if k == "x-many"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "set-cookie"] == ["s=1; Path=/", "t=2"]


def test_base64_response_body_is_decoded() -> None:
    payload = b"\x00\x01binary"
    response = translate_response(
        {
            "statusCode": 200,
            "headers": {"content-type": "audio/mpeg"},
            "body": base64.b64encode(payload).decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.body == payload


def test_result_without_status_code_is_200_json() -> None:
    response = translate_response({"message": "Hello from Lambda!"})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {"message": "Hello from Lambda!"}


def test_string_result_is_the_body_verbatim() -> None:
    response = translate_response("Hello from Lambda!")
    assert (response.status, response.body) == (200, b"Hello from Lambda!")
    assert response.header("content-type") == "application/json"


def test_framing_headers_from_the_function_are_dropped() -> None:
    response = translate_response(
        {"statusCode": 204, "headers": {"Content-Length": "99", "Connection": "close"}}
    )
    assert response.headers == []
    assert response.body == b""


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "abc"},
        {"statusCode": 99},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "***", "isBase64Encoded": True},
    ],
)
def test_malformed_results_are_refused(result: dict) -> None:
    with pytest.raises(InvalidResponse):
        translate_response(result)


# ---------------------------------------------------------------------------
# the gateway as a whole, with a stub runtime
# ---------------------------------------------------------------------------


class StubRuntime:
    """Records events and answers with ``result`` (or raises FunctionError)."""

    def __init__(self, result: Any = None, error: bool = False) -> None:
        self.events: list[tuple[str, dict]] = []
        self.result = result if result is not None else {"statusCode": 200, "body": "ok"}
        self.error = error

    def invoke(self, name: str, event: dict, **_: Any) -> Any:
        self.events.append((name, event))
        if self.error:
            raise FunctionError({"errorType": "Boom", "errorMessage": "boom"})
        return self.result


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tokens.KeyPair:
    return tokens.load_keys(Path(tmp_path_factory.mktemp("jwt")))


def _gateway(keys: tokens.KeyPair, runtime: StubRuntime, cors: Cors | None = None) -> Gateway:
    return Gateway(
        routes=_table(),
        runtime=runtime,  # type: ignore[arg-type]
        authorizers={"jwt": JwtAuthorizer(ISSUER, (AUDIENCE,))},
        cors=cors or Cors(allow_origins=("http://localhost:5173",), max_age=600),
        keys=keys,
    )


def _bearer(keys: tokens.KeyPair, **overrides: Any) -> tuple[str, str]:
    claims = tokens.build_claims(
        org="org_a", user="user_1", role="trainee", issuer=ISSUER, audience=AUDIENCE
    )
    claims.update(overrides)
    return ("Authorization", f"Bearer {tokens.sign(claims, keys)}")


@pytest.mark.parametrize(
    "auth",
    [None, ("Authorization", "Bearer"), ("Authorization", "Basic dXNlcjpwYXNz"), "expired", "aud"],
    ids=["missing", "empty-bearer", "basic", "expired", "wrong-audience"],
)
def test_unauthorized_never_reaches_the_function(keys: tokens.KeyPair, auth: Any) -> None:
    if auth == "expired":
        auth = _bearer(keys, exp=1)
    elif auth == "aud":
        auth = _bearer(keys, aud="other")
    runtime = StubRuntime()
    headers = [("Host", "h")] + ([auth] if auth else [])
    response = _gateway(keys, runtime).handle(_request("/attempts/1", headers=headers))
    assert response.status == 401
    assert response.json() == {"message": "Unauthorized"}
    assert response.header("www-authenticate").startswith("Bearer")
    assert runtime.events == []


def test_valid_token_reaches_the_function_with_string_claims(keys: tokens.KeyPair) -> None:
    runtime = StubRuntime()
    request = _request("/attempts/42?action=state", headers=[("Host", "h"), _bearer(keys)])
    response = _gateway(keys, runtime).handle(request)
    assert response.status == 200
    assert response.header("apigw-requestid")
    ((name, event),) = runtime.events
    assert name == "Fn"
    assert event["routeKey"] == "GET /attempts/{attemptId}"
    assert event["pathParameters"] == {"attemptId": "42"}
    assert event["requestContext"]["requestId"] == response.header("apigw-requestid")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert all(isinstance(value, str) for value in claims.values())
    assert json.loads(claims["o"])["id"] == "org_a"


def test_token_without_bearer_prefix_is_accepted(keys: tokens.KeyPair) -> None:
    _, value = _bearer(keys)
    runtime = StubRuntime()
    request = _request("/attempts/1", headers=[("Host", "h"), ("Authorization", value[7:])])
    assert _gateway(keys, runtime).handle(request).status == 200


def test_public_route_has_no_authorizer_block(keys: tokens.KeyPair) -> None:
    runtime = StubRuntime()
    assert _gateway(keys, runtime).handle(_request("/health")).status == 200
    assert "authorizer" not in runtime.events[0][1]["requestContext"]


def test_unknown_route_is_404_like_api_gateway(keys: tokens.KeyPair) -> None:
    gateway = _gateway(keys, StubRuntime())
    gateway.routes = RouteTable([GatewayRoute("GET", "/health", "Fn", None)])
    response = gateway.handle(_request("/nope"))
    assert response.status == 404
    assert response.json() == {"message": "Not Found"}


def test_function_error_is_500(keys: tokens.KeyPair) -> None:
    response = _gateway(keys, StubRuntime(error=True)).handle(_request("/health"))
    assert response.status == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_head_is_served_by_the_get_route_as_a_get(keys: tokens.KeyPair) -> None:
    # FastAPI answers 405 to a HEAD it has no route for: the function gets a GET.
    runtime = StubRuntime()
    assert _gateway(keys, runtime).handle(_request("/health", method="HEAD")).status == 200
    ((_, event),) = runtime.events
    assert (event["routeKey"], event["requestContext"]["http"]["method"]) == (
        "GET /health",
        "GET",
    )


def test_cors_preflight_answered_from_configuration(keys: tokens.KeyPair) -> None:
    runtime = StubRuntime()
    headers = [
        ("Host", "h"),
        ("Origin", "http://localhost:5173"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "authorization,content-type"),
    ]
    cors = Cors(
        allow_origins=("http://localhost:5173",),
        allow_methods=("GET", "POST"),
        allow_headers=("authorization", "content-type"),
        max_age=600,
    )
    response = _gateway(keys, runtime, cors).handle(
        _request("/attempts/1", method="OPTIONS", headers=headers)
    )
    assert response.status == 204
    assert response.header("access-control-allow-origin") == "http://localhost:5173"
    assert response.header("access-control-allow-methods") == "GET,POST"
    assert response.header("access-control-max-age") == "600"
    assert runtime.events == []  # no authorizer, no function for a preflight
    foreign = [(k, "https://evil.example" if k == "Origin" else v) for k, v in headers]
    refused = _gateway(keys, runtime, cors).handle(
        _request("/attempts/1", method="OPTIONS", headers=foreign)
    )
    assert refused.status == 204
    assert refused.header("access-control-allow-origin") is None


def test_cors_headers_replace_the_functions(keys: tokens.KeyPair) -> None:
    runtime = StubRuntime(
        {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": ""}
    )
    request = _request("/health", headers=[("Host", "h"), ("Origin", "http://localhost:5173")])
    response = _gateway(keys, runtime).handle(request)
    assert [v for k, v in response.headers if k.lower() == "access-control-allow-origin"] == [
        "http://localhost:5173"
    ]


def test_a_body_that_is_not_utf8_is_passed_as_base64_even_when_declared_text() -> None:
    raw = b'{"name": "caf\xe9"}'  # Latin-1, not UTF-8
    headers = [("Host", "h"), ("Content-Type", "application/json")]
    event = build_event(_request("/a", "POST", headers=headers, body=raw), route_key="POST /a")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_the_shells_log_level_and_settings_win_over_the_template(monkeypatch) -> None:
    template = load_template()
    fns = functions(template)
    fn = fns["AttemptsFunction"]
    assert fn.environment["POWERTOOLS_LOG_LEVEL"] == "INFO"
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("PRACTICE_DB_SSLMODE", "disable")
    runtime = FunctionRuntime(fns, Resolver(template), {"PRACTICE_DATABASE_URL": "local"})
    env = runtime.environment_for(fn)
    assert (env["POWERTOOLS_LOG_LEVEL"], env["PRACTICE_DB_SSLMODE"]) == ("DEBUG", "disable")
    assert env["PRACTICE_DATABASE_URL"] == "local"  # the stack's own wiring wins over both

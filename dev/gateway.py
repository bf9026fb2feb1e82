"""The local API Gateway (HTTP API, payload format 2.0, JWT authorizer).

Routes come from template.yaml through ``dev.template.http_routes``. Each HTTP
request is matched as API Gateway matches it, authorized as its JWT authorizer
would (401 ``{"message":"Unauthorized"}`` without calling the function),
translated into the payload-2.0 event AWS builds, handed to the function's
handler with a Lambda context, and the handler's response is translated back
into HTTP by API Gateway's rules. Served by the stdlib's ThreadingHTTPServer.

Local conveniences AWS does not have, kept out of the way of template routes:
HEAD falls back to the GET route, and ``/docs`` + ``/openapi.json`` serve one
Swagger UI over every function's FastAPI schema when no route claims them.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from dev import tokens
from dev.invoke import (
    ACCOUNT_ID,
    FunctionError,
    FunctionRuntime,
    FunctionSpec,
    Resolver,
    Unresolvable,
    function_specs,
    release_thread_loop,
)

API_ID = "local"
STAGE = "$default"
# API Gateway's own limit on a request payload for HTTP APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Hop-by-hop and framing headers are the server's business, never the function's.
_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class HttpRequest:
    """An HTTP request as it reached the gateway."""

    method: str
    target: str  # path and query as sent, e.g. "/attempts/1?action=state"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def _split(self) -> tuple[str, str]:
        # Origin-form targets ("/a//b?x") are split by hand: urlsplit would read
        # a leading "//" as a host. Absolute-form ("http://h/a?x") goes to urlsplit.
        if self.target.startswith("/"):
            path, _, query = self.target.partition("?")
            return path, query.partition("#")[0]
        parts = urlsplit(self.target)
        return parts.path or "/", parts.query

    @property
    def raw_path(self) -> str:
        """The path part of the target, still percent-encoded."""
        return self._split()[0]

    @property
    def raw_query(self) -> str:
        """The query string as sent, without the ``?``."""
        return self._split()[1]

    def header(self, name: str) -> str | None:
        """All values of header ``name`` joined by commas, or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass
class HttpResponse:
    """The response the gateway sends back."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def message_response(status: int, message: str, **headers: str) -> HttpResponse:
    """API Gateway's own error shape: ``{"message": ...}`` as JSON."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    extra = [(name.replace("_", "-"), value) for name, value in headers.items()]
    return HttpResponse(status, [("content-type", "application/json"), *extra], body)


# ---------------------------------------------------------------------------
# Request → payload 2.0 event
# ---------------------------------------------------------------------------


def is_text_content_type(content_type: str | None) -> bool:
    """True when API Gateway passes such a body as text (else it base64-encodes it)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    if main == "text":
        return True
    return main == "application" and (
        sub in {"json", "xml", "javascript", "ecmascript", "x-javascript"}
        or sub.endswith(("+json", "+xml"))
    )


def request_time(epoch: float) -> str:
    """``12/Mar/2020:19:03:58 +0000``, whatever the locale."""
    t = time.gmtime(epoch)
    clock = time.strftime("%H:%M:%S", t)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"


def _claim_text(value: Any) -> str:  # noqa: PLR0911 - one return per JSON type reads best
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"))


def stringify_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them on: every value a string, arrays as
    ``[a b]``, nested objects (Clerk's ``o``) as JSON text."""
    return {name: _claim_text(value) for name, value in claims.items()}


def _query_parameters(raw_query: str) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params or None


def _cookies(request: HttpRequest) -> list[str]:
    cookies: list[str] = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
    return cookies


def _event_headers(request: HttpRequest, port: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            continue  # API Gateway moves cookies to their own field
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    forwarded = headers.get("x-forwarded-for")
    client = request.source_ip
    headers["x-forwarded-for"] = f"{forwarded}, {client}" if forwarded else client
    headers["x-forwarded-port"] = port
    headers["x-forwarded-proto"] = "http"
    stamp = f"{int(time.time()):08x}"
    headers.setdefault("x-amzn-trace-id", f"Root=1-{stamp}-{secrets.token_hex(12)}")
    return headers


def build_event(
    request: HttpRequest,
    *,
    route_key: str,
    path_parameters: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
    scopes: list[str] | None = None,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload-2.0 event API Gateway sends for ``request`` on ``route_key``.

    ``claims`` is None for routes without an authorizer (no ``authorizer`` key).
    """
    now = time.time() if now is None else now
    host = request.header("host") or "localhost"
    hostname, _, port = host.partition(":")
    headers = _event_headers(request, port or "80")
    # HTTP APIs hand the function the path already percent-decoded.
    path = unquote(request.raw_path)
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": hostname,
        "domainPrefix": hostname.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id or str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": STAGE,
        "time": request_time(now),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": stringify_claims(claims), "scopes": scopes}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": request.raw_query,
    }
    cookies = _cookies(request)
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if request.body:
        if is_text_content_type(headers.get("content-type")):
            event["body"] = request.body.decode("utf-8", errors="replace")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


# ---------------------------------------------------------------------------
# Handler result → HTTP response
# ---------------------------------------------------------------------------


class InvalidResponse(ValueError):
    """The function's result is not a response API Gateway can send."""


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def translate_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a payload-2.0 function result.

    A dict with ``statusCode`` is a full response; anything else (a dict
    without it, a list, a string, a number) is a 200 ``application/json``
    whose body is the result itself (a string verbatim, the rest as JSON).
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_text(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        items = values if isinstance(values, list) else [values]
        headers.extend((str(name), _header_text(item)) for item in items)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    headers = [(k, v) for k, v in headers if k.lower() not in _FRAMING]
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise InvalidResponse(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise InvalidResponse("isBase64Encoded but the body is not base64") from exc
    else:
        data = body.encode()
    return HttpResponse(status, headers, data)


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

_PARAM = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}$")


@dataclass(frozen=True)
class GatewayRoute:
    """One template route compiled for matching."""

    method: str  # "GET", ..., or "ANY"
    path: str  # "/attempts/{attemptId}", "/{proxy+}", or "$default"
    function: str  # logical id
    authorizer: str | None  # None: no authorization
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        """``METHOD /path`` as in the event, or ``$default``."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def segments(self) -> list[str]:
        """The path's segments."""
        return [s for s in self.path.split("/") if s] if self.path != "$default" else []

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Path parameters when ``parts`` (decoded segments) fit this route, else None."""
        if self.path == "$default":
            return {}
        params: dict[str, str] = {}
        pattern = self.segments
        for index, segment in enumerate(pattern):
            found = _PARAM.match(segment)
            if found and found.group(2):  # greedy: the rest, at least one segment
                if index >= len(parts):
                    return None
                params[found.group(1)] = "/".join(parts[index:])
                return params
            if index >= len(parts):
                return None
            if found:
                params[found.group(1)] = parts[index]
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(pattern) else None

    def specificity(self) -> tuple[Any, ...]:
        """Sort key: literal segments beat parameters, which beat greedy ones;
        a specific method beats ANY; ``$default`` comes last."""
        if self.path == "$default":
            return (1,)
        ranks = []
        for segment in self.segments:
            found = _PARAM.match(segment)
            ranks.append(2 if found and found.group(2) else 1 if found else 0)
        greedy = 1 if ranks and ranks[-1] == 2 else 0
        return (0, greedy, ranks, self.method == "ANY")


class RouteTable:
    """The template's routes, matched by API Gateway's precedence."""

    def __init__(self, routes: list[GatewayRoute]) -> None:
        seen: dict[str, GatewayRoute] = {}
        for route in routes:
            other = seen.get(route.route_key)
            if other is not None and other.function != route.function:
                raise ValueError(
                    f"{route.route_key} is declared by both {other.function} and {route.function}"
                )
            seen[route.route_key] = route
        self.routes = sorted(seen.values(), key=GatewayRoute.specificity)

    def match(self, method: str, raw_path: str) -> tuple[GatewayRoute, dict[str, str]] | None:
        """The best route for ``method`` on ``raw_path`` and its path parameters."""
        parts = [unquote(p) for p in raw_path.split("/") if p]
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            params = route.match(parts)
            if params is not None:
                return route, params
        return None

    def __iter__(self):
        """Iterate over the routes, most specific first."""
        return iter(self.routes)

    def __len__(self) -> int:
        """The number of distinct routes."""
        return len(self.routes)


# ---------------------------------------------------------------------------
# The template's HTTP API: authorizers and CORS
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JwtAuthorizer:
    """A JWT authorizer: where the token is, and the issuer and audiences it must name."""

    issuer: str
    audience: tuple[str, ...]
    identity_header: str = "authorization"

    def token(self, request: HttpRequest) -> str | None:
        """The token from the identity source; the ``Bearer`` prefix is optional."""
        value = request.header(self.identity_header)
        if not value:
            return None
        value = value.strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        return value or None


@dataclass(frozen=True)
class Cors:
    """An HttpApi CorsConfiguration (or permissive local CORS when the template has none)."""

    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("*",)
    allow_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None
    permissive: bool = False

    def allowed_origin(self, origin: str) -> str | None:
        """The value of access-control-allow-origin for ``origin``, or None."""
        if self.permissive:
            return origin
        for pattern in self.allow_origins:
            if pattern == "*":
                return origin if self.allow_credentials else "*"
            if pattern.lower() == origin.lower() or fnmatch.fnmatch(origin, pattern):
                return origin
        return None

    def preflight(self, request: HttpRequest) -> HttpResponse:
        """API Gateway's own answer to a CORS preflight (always 204)."""
        origin = request.header("origin")
        allowed = self.allowed_origin(origin) if origin else None
        headers: list[tuple[str, str]] = []
        if allowed is not None:
            wanted_method = request.header("access-control-request-method") or ""
            wanted_headers = request.header("access-control-request-headers") or ""
            methods = (
                wanted_method
                if self.permissive or "*" in self.allow_methods
                else ",".join(self.allow_methods)
            )
            allow_headers = (
                wanted_headers
                if self.permissive or "*" in self.allow_headers
                else ",".join(self.allow_headers)
            )
            headers.append(("access-control-allow-origin", allowed))
            headers.append(("access-control-allow-methods", methods))
            if allow_headers:
                headers.append(("access-control-allow-headers", allow_headers))
            if self.allow_credentials or self.permissive:
                headers.append(("access-control-allow-credentials", "true"))
            if self.max_age is not None:
                headers.append(("access-control-max-age", str(self.max_age)))
            if allowed != "*":
                headers.append(("vary", "origin"))
        return HttpResponse(204, headers, b"")

    def decorate(self, request: HttpRequest, response: HttpResponse) -> None:
        """Replace the function's CORS headers with the API's, as API Gateway does."""
        origin = request.header("origin")
        if not origin:
            return
        response.headers = [
            (k, v) for k, v in response.headers if not k.lower().startswith("access-control-")
        ]
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return
        response.headers.append(("access-control-allow-origin", allowed))
        if self.allow_credentials or self.permissive:
            response.headers.append(("access-control-allow-credentials", "true"))
        if self.expose_headers:
            response.headers.append(
                ("access-control-expose-headers", ",".join(self.expose_headers))
            )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(str(item) for item in items)


def cors_from_template(template: dict[str, Any], resolver: Resolver) -> Cors:
    """The first HttpApi's CorsConfiguration; permissive local CORS without one."""
    for resource in (template.get("Resources") or {}).values():
        if (resource or {}).get("Type") != "AWS::Serverless::HttpApi":
            continue
        config = (resource.get("Properties") or {}).get("CorsConfiguration")
        if config is None or config is False:
            continue
        if config is True:
            return Cors()
        try:
            config = resolver.resolve(config)
        except Unresolvable:
            return Cors(permissive=True)
        return Cors(
            allow_origins=_strings(config.get("AllowOrigins")) or ("*",),
            allow_methods=tuple(m.upper() for m in _strings(config.get("AllowMethods"))) or ("*",),
            allow_headers=_strings(config.get("AllowHeaders")) or ("*",),
            expose_headers=_strings(config.get("ExposeHeaders")),
            allow_credentials=bool(config.get("AllowCredentials", False)),
            max_age=int(config["MaxAge"]) if config.get("MaxAge") is not None else None,
        )
    return Cors(permissive=True)


def authorizers_from_template(
    template: dict[str, Any], resolver: Resolver
) -> tuple[dict[str, JwtAuthorizer], str | None]:
    """The JWT authorizers of the template's HttpApis by name, and the default one.

    Issuer and audience fall back to the JwtIssuer/JwtAudience parameter defaults.
    """
    params = template.get("Parameters") or {}
    fallback_issuer = str((params.get("JwtIssuer") or {}).get("Default") or tokens.DEFAULT_ISSUER)
    fallback_audience = _strings((params.get("JwtAudience") or {}).get("Default")) or (
        tokens.DEFAULT_AUDIENCE,
    )
    found: dict[str, JwtAuthorizer] = {}
    default: str | None = None
    for resource in (template.get("Resources") or {}).values():
        if (resource or {}).get("Type") != "AWS::Serverless::HttpApi":
            continue
        auth = (resource.get("Properties") or {}).get("Auth") or {}
        default = default or auth.get("DefaultAuthorizer")
        for name, spec in (auth.get("Authorizers") or {}).items():
            jwt_config = (spec or {}).get("JwtConfiguration")
            if jwt_config is None:
                continue
            try:
                issuer = str(resolver.resolve(jwt_config.get("issuer") or fallback_issuer))
                audience = _strings(resolver.resolve(jwt_config.get("audience"))) or (
                    fallback_audience
                )
            except Unresolvable:
                issuer, audience = fallback_issuer, fallback_audience
            source = str(spec.get("IdentitySource") or "$request.header.Authorization")
            header = source.removeprefix("$request.header.").lower()
            found[name] = JwtAuthorizer(issuer, audience, header)
    if not found:
        found["local"] = JwtAuthorizer(fallback_issuer, fallback_audience)
        default = default or "local"
    return found, default


def jwt_settings(template: dict[str, Any]) -> tuple[str, str]:
    """The issuer and (first) audience local tokens must carry for this template."""
    authorizers, default = authorizers_from_template(template, Resolver(template))
    chosen = authorizers.get(default or "") or next(iter(authorizers.values()))
    return chosen.issuer, chosen.audience[0]


def _route_authorizer(route: Any, default: str | None) -> str | None:
    auth = getattr(route, "auth", None)
    if auth is None or auth is True:
        return default
    if auth is False:
        return None
    if isinstance(auth, dict):
        auth = auth.get("Authorizer", default)
    text = str(auth)
    return None if text.upper() == "NONE" or not text else text


def gateway_routes(routes: list[Any], default_authorizer: str | None) -> list[GatewayRoute]:
    """``dev.template.Route`` objects as GatewayRoutes."""
    compiled = []
    for route in routes:
        scopes = getattr(route, "scopes", None) or getattr(route, "authorization_scopes", None)
        compiled.append(
            GatewayRoute(
                method=str(route.method).upper(),
                path=str(route.path),
                function=route.function_logical_id,
                authorizer=_route_authorizer(route, default_authorizer),
                scopes=tuple(scopes or ()),
            )
        )
    return compiled


# ---------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------


@dataclass
class Gateway:
    """Routes, authorizes, translates and invokes: one request in, one response out."""

    routes: RouteTable
    runtime: FunctionRuntime
    authorizers: dict[str, JwtAuthorizer]
    cors: Cors = field(default_factory=lambda: Cors(permissive=True))
    keys: tokens.KeyPair | None = None
    leeway: int = tokens.LEEWAY
    log: Any = None  # a callable(str) for access lines, or None
    invocations: Counter = field(default_factory=Counter)

    @classmethod
    def from_template(
        cls,
        template: dict[str, Any],
        routes: list[Any],
        *,
        overrides: dict[str, str] | None = None,
        keys: tokens.KeyPair | None = None,
        resolver: Resolver | None = None,
        specs: dict[str, FunctionSpec] | None = None,
        log: Any = None,
        isolated: bool = False,
    ) -> Gateway:
        """A gateway for the template's HttpApi and ``routes`` (from ``http_routes``)."""
        resolver = resolver or Resolver(template)
        specs = dict(specs if specs is not None else function_specs(template, resolver))
        authorizers, default = authorizers_from_template(template, resolver)
        table = RouteTable(gateway_routes(routes, default))
        return cls(
            routes=table,
            runtime=FunctionRuntime(specs, overrides, isolated=isolated),
            authorizers=authorizers,
            cors=cors_from_template(template, resolver),
            keys=keys or tokens.load_keys(),
            log=log,
        )

    # -- the request pipeline ------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The response API Gateway (and the function behind it) gives ``request``."""
        request_id = str(uuid.uuid4())
        response = self._route(request, request_id)
        response.headers.append(("apigw-requestid", request_id))
        if not (request.method == "OPTIONS" and self._is_preflight(request)):
            self.cors.decorate(request, response)
        return response

    def _is_preflight(self, request: HttpRequest) -> bool:
        return bool(request.header("origin") and request.header("access-control-request-method"))

    def _route(self, request: HttpRequest, request_id: str) -> HttpResponse:  # noqa: PLR0911
        method = request.method.upper()
        raw_path = request.raw_path
        if len(request.body) > MAX_BODY_BYTES:
            return message_response(413, "Request Entity Too Large")
        matched = self.routes.match(method, raw_path)
        if matched is None and method == "HEAD":
            matched = self.routes.match("GET", raw_path)
        if method == "OPTIONS":
            # With CORS configured API Gateway answers every preflight itself.
            # Without a configuration (local only) any unrouted OPTIONS gets 204.
            if self._is_preflight(request) and not self.cors.permissive:
                return self.cors.preflight(request)
            if matched is None and self.cors.permissive:
                return self.cors.preflight(request)
        if matched is None:
            local = self._local_page(method, raw_path)
            return local if local is not None else message_response(404, "Not Found")
        route, params = matched
        claims = None
        scopes = None
        if route.authorizer is not None:
            verdict = self._authorize(route, request)
            if isinstance(verdict, HttpResponse):
                return verdict
            claims, scopes = verdict
        event = build_event(
            request,
            route_key=route.route_key,
            path_parameters=params or None,
            claims=claims,
            scopes=scopes,
            request_id=request_id,
        )
        self.invocations[route.function] += 1
        try:
            result = self.runtime.invoke(route.function, event)
        except FunctionError as exc:
            self._complain(route, exc.payload)
            return message_response(500, "Internal Server Error")
        try:
            return translate_response(result)
        except InvalidResponse as exc:
            self._complain(route, {"errorType": "InvalidResponse", "errorMessage": str(exc)})
            return message_response(500, "Internal Server Error")

    def _authorize(
        self, route: GatewayRoute, request: HttpRequest
    ) -> tuple[dict[str, Any], list[str] | None] | HttpResponse:
        authorizer = self.authorizers.get(route.authorizer or "")
        if authorizer is None:
            authorizer = next(iter(self.authorizers.values()))
        token = authorizer.token(request)
        if token is None:
            return message_response(401, "Unauthorized", www_authenticate="Bearer")
        try:
            claims = tokens.verify(
                token, authorizer.issuer, authorizer.audience, keys=self.keys, leeway=self.leeway
            )
        except tokens.InvalidToken as exc:
            challenge = f'Bearer scope="" error="invalid_token" error_description="{exc}"'
            return message_response(401, "Unauthorized", www_authenticate=challenge)
        if not route.scopes:
            return claims, None
        granted = str(claims.get("scope") or claims.get("scp") or "").replace(",", " ").split()
        if not set(granted) & set(route.scopes):
            challenge = f'Bearer scope="{" ".join(route.scopes)}" error="insufficient_scope"'
            return message_response(403, "Forbidden", www_authenticate=challenge)
        return claims, granted

    def _complain(self, route: GatewayRoute, payload: dict[str, Any]) -> None:
        print(
            f"[gateway] {route.route_key} → {route.function} failed: "
            f"{payload.get('errorType')}: {payload.get('errorMessage')}",
            file=sys.stderr,
        )
        for line in payload.get("stackTrace") or []:
            print(line.rstrip(), file=sys.stderr)

    # -- local pages ---------------------------------------------------------

    def _local_page(self, method: str, raw_path: str) -> HttpResponse | None:
        if method not in ("GET", "HEAD"):
            return None
        if raw_path == "/openapi.json":
            body = json.dumps(self.openapi()).encode()
            return HttpResponse(200, [("content-type", "application/json")], body)
        if raw_path == "/docs":
            from fastapi.openapi.docs import get_swagger_ui_html

            page = get_swagger_ui_html(openapi_url="/openapi.json", title="Practice API (local)")
            return HttpResponse(200, [("content-type", "text/html; charset=utf-8")], page.body)
        return None

    def openapi(self) -> dict[str, Any]:
        """One OpenAPI document over every HTTP function's FastAPI schema, limited to
        the template's routes, with the bearer scheme on the protected ones."""
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        for function in sorted({route.function for route in self.routes}):
            try:
                app = getattr(self.runtime.module(function), "app", None)
                document = app.openapi() if app is not None else {}
            except Exception as exc:  # one broken function must not hide the others
                print(f"[gateway] no OpenAPI from {function}: {exc}", file=sys.stderr)
                continue
            schemas.update((document.get("components") or {}).get("schemas") or {})
            for path, operations in (document.get("paths") or {}).items():
                for method, operation in operations.items():
                    matched = self.routes.match(method.upper(), path)
                    if matched is None or matched[0].function != function:
                        continue
                    secured = matched[0].authorizer is not None
                    security = {"security": [{"bearerAuth": []}]} if secured else {}
                    paths.setdefault(path, {})[method] = {**operation, **security}
        return {
            "openapi": "3.1.0",
            "info": {"title": "Practice API (local gateway)", "version": "local"},
            "paths": dict(sorted(paths.items())),
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
            },
        }


# ---------------------------------------------------------------------------
# The HTTP server
# ---------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a browser expects
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle's
    # algorithm meets the client's delayed ACK and each response waits ~40 ms.
    disable_nagle_algorithm = True
    server_version = "practice-local-gateway"
    sys_version = ""
    server: GatewayServer

    def _dispatch(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            response = self.server.gateway.handle(request)
        except Exception as exc:  # a bug in the gateway must not kill the server
            print(f"[gateway] internal error: {exc!r}", file=sys.stderr)
            response = message_response(500, "Internal Server Error")
        self._send(response, head=self.command == "HEAD")
        log = self.server.gateway.log
        if log is not None:
            elapsed = (time.perf_counter() - started) * 1000
            # Say why a token was refused: the 401 body never does.
            why = re.search(
                r'error_description="([^"]*)"', response.header("www-authenticate") or ""
            )
            reason = f": {why.group(1)}" if why else ""
            log(f"{self.command} {self.path} → {response.status}{reason} ({elapsed:.1f} ms)")

    # http.server looks handlers up by these names.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("content-length")
        if not length:
            return b""
        if not length.isdigit():
            self._send(message_response(400, "Bad Request"))
            return None
        size = int(length)
        if size > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(message_response(413, "Request Entity Too Large"))
            return None
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response: HttpResponse, head: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # RFC 9110: no Content-Length on 1xx and 204 responses.
        if response.status >= 200 and response.status != 204:
            self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        """The Server header: our name, without the Python version."""
        return self.server_version

    def finish(self) -> None:
        """Close the connection and the event loop this thread made for handlers."""
        try:
            super().finish()
        finally:
            release_thread_loop()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request log; the gateway logs its own lines."""


class GatewayServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that hands every request to a Gateway."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gateway: Gateway | None, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.gateway = gateway
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:3000``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GatewayServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="local-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

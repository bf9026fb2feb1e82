"""The local API Gateway (HTTP API, payload format 2.0, JWT authorizer).

Routes come from template.yaml (``dev.template.http_routes``). Each request is
matched as API Gateway matches it, authorized as its JWT authorizer would (401
``{"message":"Unauthorized"}`` without calling the function), turned into the
payload-2.0 event AWS builds, handed to the function's handler, and the result
is turned back into HTTP by API Gateway's rules. HEAD is served by the GET route
without a body. Served by the stdlib's ThreadingHTTPServer, a thread per connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
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
from dev.invoke import FunctionError, FunctionRuntime
from dev.template import ACCOUNT_ID, Resolver, Route, Unresolvable, functions, resources

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's limit on an HTTP API request payload
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Hop-by-hop and framing headers are the server's business, never the function's.
_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}
_TEXT_TYPES = {"json", "xml", "javascript", "ecmascript", "x-javascript"}
_PARAM = re.compile(r"^\{([A-Za-z0-9_.-]+)(\+?)\}$")


@dataclass
class HttpRequest:
    """An HTTP request as it reached the gateway."""

    method: str
    target: str  # path and query as sent, e.g. "/attempts/1?action=state"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def split(self) -> tuple[str, str]:
        """(raw path, raw query). Origin-form targets are split by hand: urlsplit
        would read a leading "//" as a host."""
        if self.target.startswith("/"):
            path, _, query = self.target.partition("?")
            return path, query.partition("#")[0]
        parts = urlsplit(self.target)
        return parts.path or "/", parts.query

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
# Request -> payload 2.0 event
# ---------------------------------------------------------------------------


def is_text_content_type(content_type: str | None) -> bool:
    """True when API Gateway passes such a body as text (else it base64-encodes it)."""
    main, _, sub = (content_type or "").split(";", 1)[0].strip().lower().partition("/")
    return main == "text" or (
        main == "application" and (sub in _TEXT_TYPES or sub.endswith(("+json", "+xml")))
    )


def request_time(epoch: float) -> str:
    """``12/Mar/2020:19:03:58 +0000``, whatever the locale."""
    t = time.gmtime(epoch)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{time.strftime('%H:%M:%S', t)} +0000"
    )


def _claim_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value) if not isinstance(value, float) else repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    return "null" if value is None else json.dumps(value, separators=(",", ":"))


def stringify_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them on: every value a string, arrays as
    ``[a b]``, nested objects (Clerk's ``o``) as JSON text."""
    return {name: _claim_text(value) for name, value in claims.items()}


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in pairs:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


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
    """The payload-2.0 event API Gateway sends for ``request`` on ``route_key``
    (``claims`` None: a route without an authorizer, no ``authorizer`` key)."""
    now = time.time() if now is None else now
    raw_path, raw_query = request.split()
    hostname, _, port = (request.header("host") or "localhost").partition(":")
    headers = _joined([(k.lower(), v) for k, v in request.headers if k.lower() != "cookie"])
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    )
    headers["x-forwarded-port"] = port or "80"
    headers["x-forwarded-proto"] = "http"
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")
    path = unquote(raw_path)  # HTTP APIs hand the function the path percent-decoded
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": "local",
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
        "stage": "$default",
        "time": request_time(now),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": stringify_claims(claims), "scopes": scopes}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    cookies = [
        part.strip()
        for name, value in request.headers
        if name.lower() == "cookie"
        for part in value.split(";")
        if part.strip()
    ]
    if cookies:
        event["cookies"] = cookies  # API Gateway moves cookies out of the headers
    event["headers"] = headers
    query = _joined(parse_qsl(raw_query, keep_blank_values=True))
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    event["isBase64Encoded"] = False
    if request.body:
        try:
            # Text only when declared as text and valid UTF-8, as API Gateway does.
            if not is_text_content_type(headers.get("content-type")):
                raise UnicodeDecodeError("utf-8", b"", 0, 0, "binary content type")
            event["body"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode(), True
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


# ---------------------------------------------------------------------------
# Handler result -> HTTP response
# ---------------------------------------------------------------------------


class InvalidResponse(ValueError):
    """The function's result is not a response API Gateway can send."""


def translate_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a payload-2.0 function result: a dict
    with ``statusCode`` is a full response; anything else is a 200
    ``application/json`` whose body is the result (a string verbatim, else JSON)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())
    status = result["statusCode"]
    status = int(status) if isinstance(status, str) and status.isdigit() else status
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status")
    text = lambda value: ("true" if value else "false") if isinstance(value, bool) else str(value)  # noqa: E731
    headers = [(str(k), text(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [
            (str(name), text(v)) for v in (values if isinstance(values, list) else [values])
        ]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    headers = [(k, v) for k, v in headers if k.lower() not in _FRAMING]
    body = result.get("body")
    if body is None:
        return HttpResponse(status, headers, b"")
    if not isinstance(body, str):
        raise InvalidResponse(f"body must be a string, not {type(body).__name__}")
    if not result.get("isBase64Encoded"):
        return HttpResponse(status, headers, body.encode())
    try:
        return HttpResponse(status, headers, base64.b64decode(body, validate=True))
    except binascii.Error as exc:
        raise InvalidResponse("isBase64Encoded but the body is not base64") from exc


# ---------------------------------------------------------------------------
# Routes, authorizers and CORS from the template
# ---------------------------------------------------------------------------


def match_route(route: Route, parts: list[str]) -> dict[str, str] | None:
    """Path parameters when ``parts`` (decoded segments) fit ``route``, else None."""
    pattern = [s for s in route.path.split("/") if s]
    params: dict[str, str] = {}
    for index, segment in enumerate(pattern):
        found = _PARAM.match(segment)
        if index >= len(parts):
            return None
        if found and found.group(2):  # greedy: the rest, at least one segment
            params[found.group(1)] = "/".join(parts[index:])
            return params
        if found:
            params[found.group(1)] = parts[index]
        elif segment != parts[index]:
            return None
    return params if len(parts) == len(pattern) else None


def _specificity(route: Route) -> tuple[Any, ...]:
    # Literal segments beat parameters, which beat greedy ones; a method beats ANY.
    ranks = []
    for segment in (s for s in route.path.split("/") if s):
        found = _PARAM.match(segment)
        ranks.append(2 if found and found.group(2) else 1 if found else 0)
    return (bool(ranks) and ranks[-1] == 2, ranks, route.method == "ANY")


class RouteTable:
    """The template's routes, matched by API Gateway's precedence."""

    def __init__(self, routes: list[Route]) -> None:
        seen: dict[str, Route] = {}
        for route in routes:
            other = seen.setdefault(route.route_key, route)
            if other.function.logical_id != route.function.logical_id:
                raise ValueError(
                    f"{route.route_key} is declared by both {other.function.logical_id}"
                    f" and {route.function.logical_id}"
                )
        self.routes = sorted(seen.values(), key=_specificity)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The best route for ``method`` on ``raw_path`` and its path parameters."""
        parts = [unquote(p) for p in raw_path.split("/") if p]
        for route in self.routes:
            if route.method in (method, "ANY"):
                params = match_route(route, parts)
                if params is not None:
                    return route, params
        return None

    def __iter__(self):
        """The routes, most specific first."""
        return iter(self.routes)

    def __len__(self) -> int:
        """The number of distinct routes."""
        return len(self.routes)


def _strings(value: Any) -> tuple[str, ...]:
    return () if value is None else tuple(map(str, value if isinstance(value, list) else [value]))


@dataclass(frozen=True)
class JwtAuthorizer:
    """A JWT authorizer: where the token is, and the issuer and audiences it must name."""

    issuer: str
    audience: tuple[str, ...]
    identity_header: str = "authorization"

    def token(self, request: HttpRequest) -> str | None:
        """The token from the identity source; the ``Bearer`` prefix is optional."""
        value = (request.header(self.identity_header) or "").strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        return value or None


def authorizers_from_template(template: dict[str, Any]) -> tuple[dict[str, JwtAuthorizer], str]:
    """The JWT authorizers of the template's HttpApis by name, and the default one;
    issuer and audience fall back to the JwtIssuer/JwtAudience parameter defaults."""
    resolver = Resolver(template)
    issuer = str(resolver.refs.get("JwtIssuer") or tokens.DEFAULT_ISSUER)
    audience = _strings(resolver.refs.get("JwtAudience")) or (tokens.DEFAULT_AUDIENCE,)
    found: dict[str, JwtAuthorizer] = {}
    default = "local"
    for props in resources(template, "AWS::Serverless::HttpApi").values():
        auth = props.get("Auth") or {}
        default = auth.get("DefaultAuthorizer") or default
        for name, spec in (auth.get("Authorizers") or {}).items():
            config = spec.get("JwtConfiguration")
            if config is None:
                continue
            try:
                own = (str(resolver.resolve(config.get("issuer") or issuer)),
                       _strings(resolver.resolve(config.get("audience"))) or audience)  # fmt: skip
            except Unresolvable:
                own = (issuer, audience)
            source = str(spec.get("IdentitySource") or "$request.header.Authorization")
            found[name] = JwtAuthorizer(*own, source.removeprefix("$request.header.").lower())
    return found or {"local": JwtAuthorizer(issuer, audience)}, default


def jwt_settings(template: dict[str, Any]) -> tuple[str, str]:
    """The issuer and (first) audience local tokens must carry for this template."""
    authorizers, default = authorizers_from_template(template)
    chosen = authorizers.get(default) or next(iter(authorizers.values()))
    return chosen.issuer, chosen.audience[0]


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

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> Cors:
        """The first HttpApi's CorsConfiguration; permissive local CORS without one."""
        for props in resources(template, "AWS::Serverless::HttpApi").values():
            config = props.get("CorsConfiguration")
            if config in (None, False):
                continue
            if config is True:
                return cls()
            try:
                config = Resolver(template).resolve(config)
            except Unresolvable:
                break
            return cls(
                _strings(config.get("AllowOrigins")) or ("*",),
                tuple(m.upper() for m in _strings(config.get("AllowMethods"))) or ("*",),
                _strings(config.get("AllowHeaders")) or ("*",),
                _strings(config.get("ExposeHeaders")),
                bool(config.get("AllowCredentials", False)),
                int(config["MaxAge"]) if config.get("MaxAge") is not None else None,
            )
        return cls(permissive=True)

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

    def _credentials(self) -> list[tuple[str, str]]:
        allowed = self.allow_credentials or self.permissive
        return [("access-control-allow-credentials", "true")] if allowed else []

    def preflight(self, request: HttpRequest) -> HttpResponse:
        """API Gateway's own answer to a CORS preflight (always 204)."""
        origin = request.header("origin")
        allowed = self.allowed_origin(origin) if origin else None
        if allowed is None:
            return HttpResponse(204)
        wanted_method = request.header("access-control-request-method") or ""
        wanted_headers = request.header("access-control-request-headers") or ""
        any_method = self.permissive or "*" in self.allow_methods
        any_header = self.permissive or "*" in self.allow_headers
        methods = wanted_method if any_method else ",".join(self.allow_methods)
        headers = [
            ("access-control-allow-origin", allowed),
            ("access-control-allow-methods", methods),
        ]
        allow_headers = wanted_headers if any_header else ",".join(self.allow_headers)
        if allow_headers:
            headers.append(("access-control-allow-headers", allow_headers))
        headers += self._credentials()
        if self.max_age is not None:
            headers.append(("access-control-max-age", str(self.max_age)))
        if allowed != "*":
            headers.append(("vary", "origin"))
        return HttpResponse(204, headers)

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
        response.headers += [("access-control-allow-origin", allowed), *self._credentials()]
        if self.expose_headers:
            response.headers.append(
                ("access-control-expose-headers", ",".join(self.expose_headers))
            )


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
    log: Any = None  # a callable(str) for access lines, or None
    invocations: Counter = field(default_factory=Counter)

    @classmethod
    def from_template(
        cls,
        template: dict[str, Any],
        *,
        overrides: dict[str, str] | None = None,
        keys: tokens.KeyPair | None = None,
        log: Any = None,
        isolated: bool = False,
    ) -> Gateway:
        """A gateway serving every HttpApi route of ``template``."""
        fns = functions(template)
        runtime = FunctionRuntime(fns, Resolver(template), overrides, isolated=isolated)
        routes = RouteTable([route for fn in fns.values() for route in fn.routes])
        authorizers, _ = authorizers_from_template(template)
        return cls(
            routes,
            runtime,
            authorizers,
            Cors.from_template(template),
            keys or tokens.load_keys(),
            log,
        )

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
        raw_path = request.split()[0]
        if len(request.body) > MAX_BODY_BYTES:
            return message_response(413, "Request Entity Too Large")
        method = request.method.upper()
        if method == "HEAD":
            # Served by the GET route as a GET; the server sends no body.
            method = "GET"
            request = HttpRequest(
                "GET", request.target, request.headers, b"", request.source_ip, request.protocol
            )
        matched = self.routes.match(method, raw_path)
        if method == "OPTIONS":
            # With CORS configured API Gateway answers every preflight itself;
            # without (local only) any unrouted OPTIONS gets 204.
            if self._is_preflight(request) and not self.cors.permissive:
                return self.cors.preflight(request)
            if matched is None and self.cors.permissive:
                return self.cors.preflight(request)
        if matched is None:
            return message_response(404, "Not Found")
        route, params = matched
        claims = scopes = None
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
        function = route.function.logical_id
        self.invocations[function] += 1
        try:
            return translate_response(self.runtime.invoke(function, event))
        except FunctionError as exc:
            self._complain(route, exc.payload)
        except InvalidResponse as exc:
            self._complain(route, {"errorType": "InvalidResponse", "errorMessage": str(exc)})
        return message_response(500, "Internal Server Error")

    def _authorize(
        self, route: Route, request: HttpRequest
    ) -> tuple[dict[str, Any], list[str] | None] | HttpResponse:
        authorizer = self.authorizers.get(route.authorizer or "") or next(
            iter(self.authorizers.values())
        )
        token = authorizer.token(request)
        if token is None:
            return message_response(401, "Unauthorized", www_authenticate="Bearer")
        try:
            claims = tokens.verify(token, authorizer.issuer, authorizer.audience, keys=self.keys)
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

    def _complain(self, route: Route, payload: dict[str, Any]) -> None:
        print(
            f"[gateway] {route.route_key} -> {route.function.logical_id} failed: "
            f"{payload.get('errorType')}: {payload.get('errorMessage')}",
            file=sys.stderr,
        )
        for line in payload.get("stackTrace") or []:
            print(line.rstrip(), file=sys.stderr)


# ---------------------------------------------------------------------------
# The HTTP server
# ---------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a browser expects
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle's
    # algorithm meets the client's delayed ACK and each response waits ~40 ms.
    disable_nagle_algorithm = True
    server_version = "practice-local-gateway"
    server: GatewayServer

    def _dispatch(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        # The Host the function sees is the gateway's own, as in AWS where a
        # request reaches the API only through its own domain: a client's
        # "Host: evil.example" must not end up in redirects the function builds.
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "host"]
        headers.insert(0, ("Host", self.server.authority))
        request = HttpRequest(
            self.command, self.path, headers, body, self.client_address[0], self.request_version
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
            log(f"{self.command} {self.path} -> {response.status}{reason} ({elapsed:.1f} ms)")

    # http.server looks handlers up by these names.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = self.headers.get("content-length") or "0"
        if not length.isdigit():
            self._send(message_response(400, "Bad Request"))
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(message_response(413, "Request Entity Too Large"))
            return None
        return self.rfile.read(int(length))

    def _send(self, response: HttpResponse, head: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status >= 200 and response.status != 204:  # RFC 9110: none on 1xx, 204
            self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        """The Server header: our name, without the Python version."""
        return self.server_version

    def finish(self) -> None:
        """Close the connection, and the event loop the handlers gave this thread."""
        try:
            super().finish()
        finally:
            # The thread ends with its connection; its loop's selector and
            # self-pipe would otherwise wait for the garbage collector.
            with contextlib.suppress(RuntimeError):  # no request reached a function
                asyncio.get_event_loop().close()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request log; the gateway logs its own lines."""


class GatewayServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer (a thread per connection) that hands every request to a Gateway."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 refuses connections when a browser or
    # a load test opens dozens at once; the kernel caps it at somaxconn anyway.
    request_queue_size = 1024

    def __init__(self, gateway: Gateway | None, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.gateway = gateway
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _RequestHandler)

    @property
    def authority(self) -> str:
        """``host:port`` the server listens on."""
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:3000``."""
        return f"http://{self.authority}"

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

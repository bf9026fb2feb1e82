"""Routes declared once: method and path, parameters, body, answers, errors and
whether an ``Idempotency-Key`` applies, in one declaration from which both the
reading of every request and the route's OpenAPI entry are made, so the two
cannot drift.

A route reads like a FastAPI route::

    @router.patch(
        "/attempts/{attemptId}",
        params=SaveParams,
        body=SaveAttempt,
        replies=[Reply(200, SavedDraft, headers=[ETAG])],
        errors=(403, 404, 409, 412, 422, 428),
        action="save",
    )
    async def save_attempt(call: Call[SaveParams, SaveAttempt]) -> Response:
        \"\"\"Autosave the attempt's drafts on the version they build on.\"\"\"

and is served as a plain Starlette route (``Starlette.add_route``, a public
API): FastAPI's own parameter solving would read the same request again, at
about a third of the framework's share of a request (``bench attempts``).

Before the endpoint runs, ``Call`` holds what the declaration promises and
nothing else: the caller's principal (401/403 first), the query without an
unknown or repeated name (422), the parameters validated in one step, the body
(415 unless JSON; duplicate keys 400; its model 422), and the Idempotency-Key
where one applies (refused, 422, where none does).

``action`` also serves the route at its ``?action=`` form (the consolidated
endpoint's URLs, kept for its clients): the same path
without its last segment and ``?action=<action>`` (``GET
/attempts/{attemptId}?action=info`` is ``GET /attempts/{attemptId}/info``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from psycopg import Connection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from practice.core.errors import Invalid, MethodNotAllowed, UnsupportedMediaType
from practice.core.identity import Principal
from practice.core.model import Rendered
from practice.web.body import parse_json, validate_body
from practice.web.idempotency import Idempotent, idempotency_key
from practice.web.params import RouteParams, read_params, wire

P = TypeVar("P", bound=RouteParams | None)
B = TypeVar("B")


@dataclass(frozen=True)
class Header:
    """A response header an answer carries, as the contract documents it."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


ETAG = Header("ETag", 'The version as a strong entity tag ("3"): send it back in If-Match.')
LOCATION = Header("Location", "Where the resource now lives.")
REPLAYED = Header(
    "Idempotent-Replayed",
    "true when the answer replays the first one sent for this Idempotency-Key",
    {"type": "string", "enum": ["true"]},
)
RETRY_AFTER = Header("Retry-After", "Seconds to wait before retrying.", {"type": "integer"})


@dataclass(frozen=True)
class OneOf:
    """A body that is one of ``models``: the one ``pick(document)`` names, chosen
    before validation so a refusal names that model's fields (``body.key``), not
    a branch of a union (``body.ConfirmUpload.key``)."""

    models: tuple[Any, ...]
    pick: Callable[[Any], Any]

    def union(self) -> Any:
        """The models as one type, for the contract."""
        union = self.models[0]
        for model in self.models[1:]:
            union = union | model
        return union


@dataclass(frozen=True)
class Reply:
    """A documented success answer: its status, the model of its JSON body (None:
    no body) and the headers it carries."""

    status: int
    model: Any = None
    headers: Sequence[Header] = ()
    description: str = ""


@dataclass
class Call(Generic[P, B]):  # noqa: UP046 (pydantic and FastAPI users read Generic[...] at a glance)
    """One request as its route's declaration reads it."""

    request: Request
    principal: Principal
    params: P
    body: B
    operation: Operation
    idempotent: Idempotent | None = None

    def reply(
        self,
        status: int,
        result: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A declared answer: ``result`` (a pydantic model, a ``Rendered`` document
        of the model the route declares for ``status``, or None) as JSON."""
        if result is None:
            return Response(status_code=status, headers=headers)
        if isinstance(result, Rendered):
            replies = self.operation.replies
            if not any(r.status == status and r.model is result.model for r in replies):
                raise TypeError(
                    f"{self.operation.name} declares no {status} of {result.model.__name__}"
                )
            return Response(result.body, status, headers, media_type="application/json")
        return Response(result.model_dump_json(), status, headers, media_type="application/json")

    async def once(self, respond: Callable[[Connection | None], Response]) -> Response:
        """``respond`` once per Idempotency-Key (declared ``idempotent`` routes): its
        response, or the first one's replayed; without a key, just ``respond``."""
        if self.idempotent is None:
            return respond(None)
        return self.idempotent.once(self, respond)


type Endpoint = Callable[[Call[Any, Any]], Awaitable[Response]]


@dataclass
class Operation:
    """One route as declared: what it reads, answers and refuses."""

    method: str
    path: str
    endpoint: Endpoint
    params: type[RouteParams] | None = None
    body: Any = None
    replies: Sequence[Reply] = ()
    errors: Sequence[int] = ()
    idempotent: bool = False
    public: bool = False
    action: str | None = None
    # A body the endpoint reads itself from ``call.request`` (a signed webhook:
    # the signature is over the raw bytes, checked before anything is parsed);
    # the model only documents it.
    raw_body: Any = None

    @property
    def name(self) -> str:
        """The operation's id: its endpoint's name."""
        return self.endpoint.__name__

    @property
    def seed_path(self) -> str | None:
        """The path of this route's ``?action=`` form."""
        if self.action is None:
            return None
        base, _, last = self.path.rpartition("/")
        return self.path if last.startswith("{") else base


def _json_media_type(content_type: str | None) -> bool:
    main = (content_type or "").split(";", 1)[0].strip().lower()
    return main == "application/json" or (
        main.startswith("application/") and main.endswith("+json")
    )


def _strict_query(request: Request, allowed: frozenset[str]) -> None:
    # Each name once, and only names the route reads: a repeated or unknown one
    # would otherwise be dropped without a word.
    seen: set[str] = set()
    for name, _value in parse_qsl(request.url.query, keep_blank_values=True):
        if name not in allowed:
            raise Invalid(
                f"this operation takes no query parameter {name!r}", field=f"query.{name}"
            )
        if name in seen:
            raise Invalid(
                f"the query parameter {name!r} is given more than once", field=f"query.{name}"
            )
        seen.add(name)


class Router:
    """A feature's routes, declared where the feature's HTTP lives
    (``practice.web.api.<feature>``) and served by the function that includes
    them. An endpoint takes the ``Call`` and, by parameter name, the services
    the function binds once at init (no per-request resolution)::

        router = Router()

        @router.get("/attempts/{attemptId}/info", params=OfAttempt, replies=[...])
        async def attempt_info(call: Call[OfAttempt, None], attempts: AttemptService) -> Response:
            ...
    """

    def __init__(self) -> None:
        self.declared: list[
            tuple[str, str, Callable[..., Awaitable[Response]], dict[str, Any]]
        ] = []
        self.moves: list[tuple[str, str, str, str]] = []

    def route(self, method: str, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare the decorated endpoint at ``method path``."""

        def register(endpoint: Callable[..., Awaitable[Response]]) -> Any:
            if not inspect.iscoroutinefunction(endpoint):
                raise TypeError(f"{endpoint.__name__} must be async")
            Operation(method, path, endpoint, **declared)  # a declaration error fails at import
            self.declared.append((method, path, endpoint, declared))
            return endpoint

        return register

    def get(self, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare a GET route."""
        return self.route("GET", path, **declared)

    def post(self, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare a POST route."""
        return self.route("POST", path, **declared)

    def put(self, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare a PUT route."""
        return self.route("PUT", path, **declared)

    def patch(self, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare a PATCH route."""
        return self.route("PATCH", path, **declared)

    def delete(self, path: str, **declared: Any) -> Callable[[Any], Any]:
        """Declare a DELETE route."""
        return self.route("DELETE", path, **declared)

    def moved(self, method: str, path: str, action: str, to: str) -> None:
        """``?action=<action>`` on ``path`` answers 308 to ``to`` (an action that moved)."""
        self.moves.append((method, path, action, to))


def _bound(endpoint: Callable[..., Awaitable[Response]], services: dict[str, Any]) -> Endpoint:
    # The services an endpoint names after its Call, bound once.
    wanted = list(inspect.signature(endpoint).parameters)[1:]
    missing = [name for name in wanted if name not in services]
    if missing:
        raise TypeError(f"{endpoint.__name__} needs {', '.join(missing)}, which were not given")
    given = {name: services[name] for name in wanted}

    @functools.wraps(endpoint)
    async def serve(call: Call[Any, Any]) -> Response:
        return await endpoint(call, **given)

    return serve


class Api:
    """The routes of one HTTP function, declared once and served as declared."""

    def __init__(
        self,
        app: Starlette,
        principal_of: Callable[[Request], Principal],
        idempotency: Any = None,
    ) -> None:
        self.app = app
        self.principal_of = principal_of
        self.idempotency = idempotency
        self.operations: list[Operation] = []
        # The ?action= forms: (method, path) -> {action: operation}; "": the default.
        self._seed_forms: dict[tuple[str, str], dict[str, Operation | str]] = {}

    def include(self, router: Router, **services: Any) -> None:
        """Serve ``router``'s routes, each endpoint given the ``services`` it names."""
        for method, path, endpoint, declared in router.declared:
            self._declare(Operation(method, path, _bound(endpoint, services), **declared))
        for method, path, action, to in router.moves:
            self._seed_form(method, path)[action] = to

    def _declare(self, operation: Operation) -> None:
        if operation.idempotent and self.idempotency is None:
            raise TypeError(f"{operation.name} takes an Idempotency-Key but the Api has none")
        self.operations.append(operation)
        self._serve(operation)

    # -- serving -------------------------------------------------------------------

    def _serve(self, operation: Operation) -> None:
        serve = self._reader(operation)
        if operation.seed_path == operation.path:
            # The route's own path is also its ?action= form's: its action is the default there.
            self._seed_form(operation.method, operation.path)[""] = operation
        else:
            self.app.add_route(operation.path, serve, methods=[operation.method])
        if operation.seed_path is not None:
            self._seed_form(operation.method, operation.seed_path)[operation.action] = operation

    def _seed_form(self, method: str, path: str) -> dict[str, Operation | str]:
        key = (method, path)
        if key not in self._seed_forms:
            self._seed_forms[key] = {}
            dispatch = self._dispatcher(path, self._seed_forms[key])
            self.app.add_route(path, dispatch, methods=[method])
        return self._seed_forms[key]

    def _dispatcher(
        self, path: str, actions: dict[str, Operation | str]
    ) -> Callable[[Request], Awaitable[Response]]:
        readers: dict[str, Callable[[Request], Awaitable[Response]]] = {}

        async def dispatch(request: Request) -> Response:
            values = request.query_params.getlist("action")
            if len(values) > 1:
                raise Invalid(
                    "the query parameter 'action' is given more than once", field="query.action"
                )
            if not values and "" not in actions:
                # No operation lives here without an action: as for any method a
                # path does not serve, say which ones it does.
                return self._not_allowed(request, path)
            chosen = actions.get(values[0] if values else "")
            if chosen is None:
                named = ", ".join(sorted(a for a in actions if a))
                raise Invalid(f"action must be one of {named}", field="query.action")
            if isinstance(chosen, str):
                return RedirectResponse(f"{request.scope.get('root_path', '')}{chosen}", 308)
            if chosen.name not in readers:
                readers[chosen.name] = self._reader(chosen, seed_form=True)
            return await readers[chosen.name](request)

        return dispatch

    def _not_allowed(self, request: Request, path: str) -> Response:
        methods = sorted({o.method for o in self.operations if o.path == path})
        raise MethodNotAllowed(
            f"{request.method} {path} needs an action; this path serves {', '.join(methods)}",
            allow=methods,
        )

    def _reader(
        self, operation: Operation, *, seed_form: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        allowed = frozenset(
            [name for location, name in _wire_names(operation.params) if location == "query"]
            + (["action"] if seed_form else [])
        )
        takes_key = operation.idempotent

        async def serve(request: Request) -> Response:
            principal = None if operation.public else self.principal_of(request)
            _strict_query(request, allowed)
            params = read_params(request, operation.params) if operation.params else None
            idempotent = idempotency_key(request, takes_key)
            body = await _read_body(request, operation)
            call = Call(request, principal, params, body, operation)  # type: ignore[arg-type]
            if idempotent is not None:
                call.idempotent = Idempotent(self.idempotency, principal, idempotent)
            return await operation.endpoint(call)

        serve.__name__ = operation.name
        return serve


def _wire_names(model: type[RouteParams] | None) -> list[tuple[str, str]]:
    return [(location, name) for _field, location, name in wire(model)] if model else []


async def _read_body(request: Request, operation: Operation) -> Any:
    if operation.raw_body is not None:
        return None  # the endpoint reads (and first verifies) the raw bytes itself
    raw = await request.body()
    if operation.body is None:
        if raw:
            raise Invalid("this operation takes no body", field="body")
        return None
    content_type = request.headers.get("content-type")
    if raw and not _json_media_type(content_type):
        raise UnsupportedMediaType(f"the body must be application/json, not {content_type}")
    document = parse_json(raw)
    model = operation.body
    if isinstance(model, OneOf):
        model = model.pick(document)
    return validate_body(document, model)


__all__ = [
    "ETAG",
    "LOCATION",
    "REPLAYED",
    "RETRY_AFTER",
    "Api",
    "Call",
    "Header",
    "OneOf",
    "Reply",
    "Router",
]

"""Reads template.yaml (with its CloudFormation short-form tags) and lists what the
local stack needs from it: the functions and the HTTP routes that reach them.

API
---
``load_template(path=ROOT / "template.yaml") -> dict``
    The template as plain data. Short-form tags become their long form
    (``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``,
    ``!Sub s`` -> ``{"Fn::Sub": s}``, ...), and ``2012-10-17``-like scalars stay strings.
``functions(template) -> dict[str, Function]``
    Every ``AWS::Serverless::Function`` by logical id, with Globals.Function merged in.
``http_routes(template) -> list[Route]``
    One ``Route`` per ``HttpApi`` event, in template order.
``parameter_defaults(template) -> dict[str, str]``
    Each parameter's default (a list parameter's default is its comma-joined text).

Values the template computes (``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::Join``...)
are NOT resolved: an environment variable such as ``PRACTICE_UPLOADS_BUCKET`` is
left as ``{"Ref": "UploadsBucket"}``. Callers override those with local values (or
drop them) before putting the environment in place; ``Function.literal_environment``
keeps only the plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_HTTP_API = "AWS::Serverless::HttpApi"

# Functions' properties that Globals.Function may set and the local stack reads.
_DEFAULTS = {"Timeout": 3, "MemorySize": 128}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic tags."""


# CloudFormation reads dates as strings ("Version: 2012-10-17"): drop the resolver.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in {"Ref", "Condition"}:
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path | str = TEMPLATE) -> dict[str, Any]:
    """The template at ``path`` as plain data, intrinsics in their long form."""
    with Path(path).open(encoding="utf-8") as stream:
        data = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return data


@dataclass(frozen=True)
class Function:
    """A serverless function as the template declares it, Globals applied."""

    logical_id: str
    handler: str  # "app.handler"
    code_uri: str  # "functions/attempts/", relative to the template's folder
    timeout: int | Any
    memory: int | Any
    environment: dict[str, Any]  # Globals' variables, then the function's own
    events: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def module(self) -> str:
        """The import path tests and the local stack use: ``functions.attempts.app``."""
        return _module(self.code_uri, self.handler)

    @property
    def attribute(self) -> str:
        """The handler's attribute name in its module (``handler``)."""
        return self.handler.rsplit(".", 1)[1]

    @property
    def literal_environment(self) -> dict[str, str]:
        """The variables whose values are plain scalars (intrinsics dropped)."""
        return {
            name: str(value)
            for name, value in self.environment.items()
            if isinstance(value, str | int | float | bool)
        }


@dataclass(frozen=True)
class Route:
    """One HTTP API route and the function that serves it."""

    function_logical_id: str
    handler: str
    code_uri: str
    method: str  # upper case; "ANY" matches every method
    path: str  # as in the template: "/attempts/{attemptId}", "/files/{key+}"
    auth: bool  # True when the JWT authorizer guards the route
    timeout: int | Any
    memory: int | Any
    environment: dict[str, Any]
    event_name: str = ""  # the event's logical name, e.g. "GetAttempt"
    authorizer: str | None = None  # the authorizer's name when ``auth``, else None
    scopes: tuple[str, ...] = ()  # the event's Auth.AuthorizationScopes

    @property
    def module(self) -> str:
        """The import path of the function's module (``functions.attempts.app``)."""
        return _module(self.code_uri, self.handler)

    @property
    def attribute(self) -> str:
        """The handler's attribute name in its module (``handler``)."""
        return self.handler.rsplit(".", 1)[1]

    @property
    def route_key(self) -> str:
        """API Gateway's route key: ``"GET /attempts/{attemptId}"``."""
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method`` and ``path`` hit this route, else None."""
        if self.method not in {"ANY", method.upper()}:
            return None
        names, pattern = _path_pattern(self.path)
        found = pattern.fullmatch(path)
        return None if found is None else dict(zip(names, found.groups(), strict=True))


def _module(code_uri: str, handler: str) -> str:
    package = ".".join(Path(code_uri).parts)
    return f"{package}.{handler.rsplit('.', 1)[0]}"


def _path_pattern(template_path: str) -> tuple[list[str], re.Pattern[str]]:
    """Parameter names and a regex for an API Gateway path (``{name}``, greedy ``{name+}``)."""
    names: list[str] = []
    parts: list[str] = []
    for piece in re.split(r"(\{[^}]+\})", template_path):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            names.append(name.removesuffix("+"))
            parts.append("(.+)" if greedy else "([^/]+)")
        else:
            parts.append(re.escape(piece))
    return names, re.compile("".join(parts))


def functions(template: Mapping[str, Any]) -> dict[str, Function]:
    """Every serverless function by logical id, with Globals.Function merged in."""
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    global_env = ((globals_.get("Environment") or {}).get("Variables")) or {}
    found: dict[str, Function] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        props = resource.get("Properties") or {}

        def prop(name: str, props: Mapping[str, Any] = props) -> Any:
            return props.get(name, globals_.get(name, _DEFAULTS.get(name)))

        own_env = ((props.get("Environment") or {}).get("Variables")) or {}
        found[logical_id] = Function(
            logical_id=logical_id,
            handler=prop("Handler"),
            code_uri=prop("CodeUri"),
            timeout=prop("Timeout"),
            memory=prop("MemorySize"),
            environment={**global_env, **own_env},
            events=dict(props.get("Events") or {}),
        )
    return found


def http_routes(template: Mapping[str, Any]) -> list[Route]:
    """One Route per HttpApi event of every function, in template order.

    ``auth`` is False when the event says ``Auth: {Authorizer: NONE}`` or when its
    API (the referenced ``AWS::Serverless::HttpApi``, or the implicit API's
    Globals.HttpApi) has no default authorizer and the event names none.
    """
    resources = template.get("Resources") or {}
    implicit_auth = ((template.get("Globals") or {}).get("HttpApi") or {}).get("Auth") or {}
    routes: list[Route] = []
    for fn in functions(template).values():
        for event_name, event in fn.events.items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            api_auth = implicit_auth
            api_id = props.get("ApiId")
            if isinstance(api_id, dict) and "Ref" in api_id:
                api = resources.get(api_id["Ref"]) or {}
                if api.get("Type") != SERVERLESS_HTTP_API:
                    raise ValueError(f"{fn.logical_id}.{event_name}: ApiId is not an HttpApi")
                api_auth = (api.get("Properties") or {}).get("Auth") or {}
            event_auth = props.get("Auth") or {}
            authorizer = event_auth.get("Authorizer")
            if authorizer is None:
                authorizer = api_auth.get("DefaultAuthorizer")
            protected = authorizer not in {None, "NONE"}
            routes.append(
                Route(
                    function_logical_id=fn.logical_id,
                    handler=fn.handler,
                    code_uri=fn.code_uri,
                    method=str(props.get("Method", "ANY")).upper(),
                    path=props.get("Path", "/{proxy+}"),
                    auth=protected,
                    timeout=fn.timeout,
                    memory=fn.memory,
                    environment=dict(fn.environment),
                    event_name=event_name,
                    authorizer=authorizer if protected else None,
                    scopes=tuple(event_auth.get("AuthorizationScopes") or ()) if protected else (),
                )
            )
    return routes


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter's default as text (lists comma-joined); those without one are absent."""
    defaults: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if "Default" in spec:
            value = spec["Default"]
            defaults[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return defaults

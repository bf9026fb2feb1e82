"""template.yaml as the local stack needs it: the functions (Globals merged in),
the HTTP routes that reach them, and CloudFormation values resolved for the laptop.

The template is parsed by cfn-lint's decoder, which turns short-form tags into
their long form (``!Ref X`` -> ``{"Ref": "X"}``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "practice-local"
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def load_template(path: Path | str = TEMPLATE) -> dict[str, Any]:
    """The template at ``path`` as plain data, intrinsics in their long form."""
    data, problems = decode_str(Path(path).read_text(encoding="utf-8"))
    if problems or not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template: {problems or 'no Resources'}")
    return data


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """Each resource of ``type_`` by logical id: its Properties."""
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == type_
    }


@dataclass(frozen=True)
class Route:
    """One HttpApi event: method, path and the authorizer guarding it (None: public)."""

    function: Function = field(repr=False, compare=False)
    method: str  # upper case; "ANY" matches every method
    path: str  # "/attempts/{attemptId}", "/files/{key+}"
    authorizer: str | None
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        """API Gateway's route key: ``GET /attempts/{attemptId}``."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Schedule:
    """One Schedule event: the rule's expression and the Input it sends (None:
    EventBridge's own scheduled event)."""

    function: Function = field(repr=False, compare=False)
    name: str  # the event's key in the template: "SweepDedupe"
    expression: str  # "rate(1 hour)", "cron(0 2 * * ? *)"
    input: Any = None  # the parsed Input JSON

    @property
    def rate_seconds(self) -> int | None:
        """The period of a ``rate(...)`` expression in seconds; None for cron."""
        found = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", self.expression.strip())
        if found is None:
            return None
        return int(found.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[found.group(2)]


@dataclass(frozen=True)
class Function:
    """An AWS::Serverless::Function as the template declares it, Globals applied."""

    logical_id: str
    code_uri: str  # "functions/attempts/"
    handler: str  # "app.handler"
    timeout: Any = 3  # Lambda's defaults when neither the function nor Globals set them
    memory: Any = 128
    environment: dict[str, Any] = field(default_factory=dict)  # intrinsics unresolved
    function_name: Any = None
    routes: list[Route] = field(default_factory=list, compare=False, repr=False)
    schedules: list[Schedule] = field(default_factory=list, compare=False, repr=False)

    @property
    def module(self) -> str:
        """The dotted module of the handler: ``functions.attempts.app``."""
        return ".".join((*Path(self.code_uri).parts, self.handler.rsplit(".", 1)[0]))

    @property
    def attribute(self) -> str:
        """The handler's name in its module (``handler``)."""
        return self.handler.rsplit(".", 1)[1]

    @property
    def directory(self) -> str:
        """The last folder of CodeUri (``attempts``)."""
        return Path(self.code_uri).name

    @property
    def name(self) -> str:
        """The deployed name: FunctionName when literal, else the logical id."""
        return self.function_name if isinstance(self.function_name, str) else self.logical_id


def functions(template: dict[str, Any]) -> dict[str, Function]:
    """Every function with code on disk by logical id, with its HttpApi routes."""
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    api_auth = {
        logical_id: props.get("Auth") or {}
        for logical_id, props in resources(template, "AWS::Serverless::HttpApi").items()
    }
    implicit_auth = ((template.get("Globals") or {}).get("HttpApi") or {}).get("Auth") or {}
    found: dict[str, Function] = {}
    for logical_id, props in resources(template, "AWS::Serverless::Function").items():
        merged = {**globals_, **props}
        if not isinstance(merged.get("CodeUri"), str):
            continue  # inline or image functions have nothing to import here
        env = {
            **((globals_.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        fn = Function(
            logical_id,
            merged["CodeUri"],
            merged["Handler"],
            merged.get("Timeout", 3),
            merged.get("MemorySize", 128),
            env,
            props.get("FunctionName"),
        )
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == "Schedule":
                schedule = event.get("Properties") or {}
                raw = schedule.get("Input")
                given = json.loads(raw) if isinstance(raw, str) else None
                expression = schedule.get("Schedule", "")
                if isinstance(expression, dict) and "Ref" in expression:
                    # A parameter (RefreshSchedule): its default, as a deploy without overrides.
                    parameter = (template.get("Parameters") or {}).get(expression["Ref"]) or {}
                    expression = parameter.get("Default", expression)
                fn.schedules.append(Schedule(fn, event_name, str(expression), given))
                continue
            if event.get("Type") != "HttpApi":
                continue
            event_props = event.get("Properties") or {}
            api_id = event_props.get("ApiId")
            api = api_id.get("Ref") if isinstance(api_id, dict) else None
            auth = event_props.get("Auth") or {}
            authorizer = auth.get("Authorizer") or api_auth.get(api, implicit_auth).get(
                "DefaultAuthorizer"
            )
            authorizer = None if authorizer in (None, "NONE") else authorizer
            scopes = tuple(auth.get("AuthorizationScopes") or ()) if authorizer else ()
            method = str(event_props.get("Method", "ANY")).upper()
            path = event_props.get("Path", "/{proxy+}")
            fn.routes.append(Route(fn, method, path, authorizer, scopes))
        found[logical_id] = fn
    return found


def schedules(template: dict[str, Any]) -> list[Schedule]:
    """Every Schedule event of every function, in template order."""
    return [schedule for fn in functions(template).values() for schedule in fn.schedules]


def http_routes(template: dict[str, Any]) -> list[Route]:
    """Every HttpApi route of every function, in template order."""
    return [route for fn in functions(template).values() for route in fn.routes]


class Unresolvable(ValueError):
    """An intrinsic the local stack cannot evaluate (a resource only AWS creates)."""


class Resolver:
    """Evaluates Ref, Fn::Sub, Fn::GetAtt (buckets), Fn::Join, Fn::Select and
    Fn::ToJsonString with parameter defaults, pseudo parameters and local bucket names."""

    def __init__(self, template: dict[str, Any]) -> None:
        # UploadsBucket -> practice-local-uploads (practice.core.config's default name).
        self.buckets: dict[str, str] = {}
        for logical_id, props in resources(template, "AWS::S3::Bucket").items():
            stem = logical_id.lower().removesuffix("bucket") or "bucket"
            local = re.sub(r"[^a-z0-9.-]", "-", f"practice-local-{stem}")[:63]
            declared = props.get("BucketName")
            self.buckets[logical_id] = declared if isinstance(declared, str) else local
        self.refs: dict[str, Any] = dict(_PSEUDO)
        for name, spec in (template.get("Parameters") or {}).items():
            default = spec.get("Default")
            if default is None:
                continue
            if str(spec.get("Type", "String")).startswith(("CommaDelimitedList", "List<")):
                items = default if isinstance(default, list) else str(default).split(",")
                self.refs[name] = [str(item).strip() for item in items]
            else:
                self.refs[name] = str(default)
        self.refs.update(self.buckets)

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one return per intrinsic
        """The value with every intrinsic evaluated; ``Unresolvable`` if one cannot be."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg not in self.refs:
                    raise Unresolvable(f"Ref {arg}")
                return self.refs[arg]
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::GetAtt":
                return self._getatt(*(arg.split(".", 1) if isinstance(arg, str) else arg))
            if key == "Fn::Join":
                return str(arg[0]).join(self.text(item) for item in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg))
            if key.startswith("Fn::"):  # Fn::If tests deployment conditions, unknown here
                raise Unresolvable(key)
        return {key: self.resolve(item) for key, item in value.items()}

    def text(self, value: Any) -> str:
        """The value resolved and rendered as an environment variable's text."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, list | dict):
            raise Unresolvable(f"{value!r} is not a scalar")
        return "" if resolved is None else str(resolved)

    def environment(self, variables: dict[str, Any]) -> dict[str, str]:
        """The variables that resolve locally, as text (those only AWS knows are left out)."""
        resolved = {}
        for name, value in variables.items():
            try:
                resolved[name] = self.text(value)
            except (Unresolvable, LookupError, TypeError, ValueError):
                continue
        return resolved

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {key: self.text(item) for key, item in extra.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name:
                return self._getatt(*name.split(".", 1))
            value = self.resolve({"Ref": name})
            if not isinstance(value, str):
                raise Unresolvable(f"${{{name}}} is a list")
            return value

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _getatt(self, logical_id: str, attribute: str) -> str:
        bucket = self.buckets.get(logical_id)
        values = {
            "Arn": f"arn:aws:s3:::{bucket}",
            "DomainName": f"{bucket}.s3.amazonaws.com",
            "RegionalDomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
        }
        if bucket is None or attribute not in values:
            raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute}")
        return values[attribute]

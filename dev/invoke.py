"""Running a function as Lambda would, without Docker: the template's functions,
their environment (intrinsics resolved for the laptop), the handler imported as
``functions.<dir>.app``, a Lambda context object, and the JSON round trip the
Lambda runtime makes on the way in and out.

One process hosts every function, like one warm container per function that
happens to share the interpreter: each module is imported once, with its own
template environment applied (and ``practice.config.get_settings`` re-read)
just before its import, because the functions read their settings at import.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shared" / "python"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "practice-local"
# The bucket every function uses when the template does not name one
# (practice.config's default for PRACTICE_UPLOADS_BUCKET).
LOCAL_UPLOADS_BUCKET = "practice-local-uploads"

# Lambda's own defaults when neither the function nor Globals set them.
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128

_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

# Soft local defaults: a developer's shell and the template may override them.
# Tracing has no daemon to talk to, and metrics would print an EMF blob after
# every request.
SOFT_DEFAULTS = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "AWS_SAM_LOCAL": "true",
}


def ensure_import_paths() -> None:
    """Put the repo root and the layer's python/ dir on sys.path, as Lambda does."""
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


# ---------------------------------------------------------------------------
# CloudFormation values, resolved for the laptop
# ---------------------------------------------------------------------------


class Unresolvable(ValueError):
    """An intrinsic the local stack cannot evaluate (a resource only AWS creates)."""


def bucket_names(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → local bucket name for every AWS::S3::Bucket in the template."""
    names: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if (resource or {}).get("Type") != "AWS::S3::Bucket":
            continue
        declared = ((resource.get("Properties") or {}).get("BucketName")) or None
        if isinstance(declared, str):
            names[logical_id] = declared
        else:
            # UploadsBucket → practice-local-uploads, the config's default name,
            # so a function without the variable finds the same bucket.
            stem = logical_id.lower().removesuffix("bucket") or "bucket"
            names[logical_id] = re.sub(r"[^a-z0-9.-]", "-", f"practice-local-{stem}")[:63]
    return names


@dataclass
class Resolver:
    """Evaluates Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Select and Fn::If with
    parameter defaults, pseudo parameters and local bucket names."""

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        refs: dict[str, Any] = dict(_PSEUDO)
        for name, spec in (self.template.get("Parameters") or {}).items():
            default = (spec or {}).get("Default")
            if default is None:
                continue
            kind = str((spec or {}).get("Type", "String"))
            if kind.startswith(("CommaDelimitedList", "List<")):
                items = default if isinstance(default, list) else str(default).split(",")
                refs[name] = [str(item).strip() for item in items]
            else:
                refs[name] = str(default)
        refs.update(self.parameters)
        self.buckets = bucket_names(self.template)
        refs.update(self.buckets)
        self.refs = refs

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic evaluated; ``Unresolvable`` if one cannot be."""
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            raise Unresolvable(repr(value))
        if len(value) == 1:
            ((key, arg),) = value.items()
            method = {
                "Ref": self._ref,
                "Fn::Sub": self._sub,
                "Fn::GetAtt": self._getatt,
                "Fn::Join": self._join,
                "Fn::Select": self._select,
                "Fn::If": self._if,
                "Fn::ToJsonString": lambda arg: json.dumps(self.resolve(arg)),
            }.get(key)
            if method is not None:
                return method(arg)
        return {key: self.resolve(item) for key, item in value.items()}

    def text(self, value: Any) -> str:
        """The value resolved and rendered as an environment variable's text."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, list | dict):
            raise Unresolvable(f"{value!r} is not a scalar")
        return "" if resolved is None else str(resolved)

    def _ref(self, name: Any) -> Any:
        if isinstance(name, str) and name in self.refs:
            return self.refs[name]
        raise Unresolvable(f"Ref {name}")

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {key: self.text(item) for key, item in (extra or {}).items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name:
                return self._getatt(name)
            value = self._ref(name)
            if not isinstance(value, str):
                raise Unresolvable(f"${{{name}}} is a list")
            return value

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _getatt(self, arg: Any) -> str:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        bucket = self.buckets.get(logical_id)
        if bucket is not None:
            values = {
                "Arn": f"arn:aws:s3:::{bucket}",
                "DomainName": f"{bucket}.s3.amazonaws.com",
                "RegionalDomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
            }
            if attribute in values:
                return values[attribute]
        raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute}")

    def _join(self, arg: Any) -> str:
        separator, items = arg
        return str(separator).join(self.text(item) for item in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _if(self, arg: Any) -> Any:
        # Conditions usually test the deployment stage; locally they are unknown.
        raise Unresolvable(f"Fn::If {arg[0]}")


# ---------------------------------------------------------------------------
# Functions of the template
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function as the local stack runs it."""

    logical_id: str
    code_uri: str
    handler: str
    timeout: int = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    environment: dict[str, str] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()
    function_name: str = ""

    @property
    def name(self) -> str:
        """The deployed function name (FunctionName when literal, else the logical id)."""
        return self.function_name or self.logical_id

    @property
    def directory(self) -> str:
        """The last folder of CodeUri (``attempts`` for ``functions/attempts/``)."""
        return Path(self.code_uri.rstrip("/")).name

    @property
    def module_name(self) -> str:
        """The dotted module the handler lives in, e.g. ``functions.attempts.app``."""
        package = ".".join(Path(self.code_uri.rstrip("/")).parts)
        module = self.handler.rsplit(".", 1)[0]
        return f"{package}.{module}" if package else module

    @property
    def attribute(self) -> str:
        """The handler's name inside its module (``handler``)."""
        return self.handler.rsplit(".", 1)[1]

    @property
    def arn(self) -> str:
        """The ARN Lambda would give the function."""
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"


def resolve_environment(
    variables: dict[str, Any], resolver: Resolver
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Variables resolved to text, and the names left out because AWS alone knows them."""
    environment: dict[str, str] = {}
    skipped: list[str] = []
    for name, value in (variables or {}).items():
        if isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
            continue
        try:
            environment[name] = resolver.text(value)
        except (Unresolvable, LookupError, TypeError, ValueError):
            skipped.append(name)
    return environment, tuple(skipped)


def _as_int(value: Any, resolver: Resolver, default: int) -> int:
    try:
        return int(resolver.resolve(value)) if value is not None else default
    except (Unresolvable, TypeError, ValueError):
        return default


def function_specs(
    template: dict[str, Any], resolver: Resolver | None = None
) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function of the template (``dev.template.functions``,
    Globals merged in), with its environment resolved for the laptop."""
    from dev.template import functions

    resolver = resolver or Resolver(template)
    names = {
        logical_id: (resource.get("Properties") or {}).get("FunctionName")
        for logical_id, resource in (template.get("Resources") or {}).items()
    }
    specs: dict[str, FunctionSpec] = {}
    for logical_id, function in functions(template).items():
        if not isinstance(function.code_uri, str) or not isinstance(function.handler, str):
            continue  # inline or image functions have nothing to import here
        environment, skipped = resolve_environment(function.environment, resolver)
        name = names.get(logical_id)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=function.code_uri,
            handler=function.handler,
            timeout=_as_int(function.timeout, resolver, DEFAULT_TIMEOUT),
            memory=_as_int(function.memory, resolver, DEFAULT_MEMORY),
            environment=environment,
            unresolved=skipped,
            function_name=name if isinstance(name, str) else "",
        )
    return specs


def find_spec(specs: dict[str, FunctionSpec], name: str) -> FunctionSpec:
    """The function named by logical id or CodeUri folder, case-insensitively."""
    wanted = name.lower()
    for spec in specs.values():
        if wanted in (spec.logical_id.lower(), spec.directory.lower()):
            return spec
    known = ", ".join(sorted(f"{s.logical_id} ({s.directory})" for s in specs.values()))
    raise KeyError(f"no function {name!r} in the template; known: {known}")


def spec_for_event_file(specs: dict[str, FunctionSpec], filename: str) -> FunctionSpec:
    """The function an ``events/<function>-<case>[.<status>].json`` file belongs to:
    the longest leading dash-separated part that names a function."""
    stem = Path(filename).name.split(".", 1)[0]
    parts = stem.split("-")
    for size in range(len(parts), 0, -1):
        try:
            return find_spec(specs, "-".join(parts[:size]))
        except KeyError:
            continue
    raise KeyError(f"{filename}: its name does not start with a function's name")


# ---------------------------------------------------------------------------
# The Lambda context and the runtime
# ---------------------------------------------------------------------------


class LambdaContext:
    """What the Python runtime passes as ``context`` (same attribute names and types)."""

    def __init__(self, spec: FunctionSpec, request_id: str | None = None) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        # The runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a string.
        self.memory_limit_in_mb = str(spec.memory)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.log_stream_name = f"{day}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The handler raised, or its result is not JSON: Lambda's error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "error"))
        self.payload = payload


def _forget_settings() -> None:
    config = sys.modules.get("practice.config")
    if config is not None:
        config.get_settings.cache_clear()


_thread_loops = threading.local()


def _ensure_event_loop() -> None:
    # Mangum asks asyncio for the current loop; worker threads of the local
    # gateway have none, and Lambda's single thread always has one.
    if getattr(_thread_loops, "loop", None) is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "no current event loop"
                asyncio.get_event_loop()
            return
        except RuntimeError:
            pass
        _thread_loops.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_thread_loops.loop)


def release_thread_loop() -> None:
    """Close the event loop this thread created for handlers (a finished connection)."""
    loop = getattr(_thread_loops, "loop", None)
    if loop is not None:
        asyncio.set_event_loop(None)
        loop.close()
        _thread_loops.loop = None


class FunctionRuntime:
    """Loads functions on first use and invokes them with a Lambda context."""

    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        overrides: dict[str, str] | None = None,
        *,
        isolated: bool = False,
    ) -> None:
        """``isolated``: import private copies of the modules (not ``functions.<dir>.app``
        in sys.modules) and restore the environment after each import, so a test
        can run a gateway beside other tests that import the same functions."""
        self.specs = specs
        self.overrides = dict(overrides or {})
        self.isolated = isolated
        self._handlers: dict[str, Any] = {}
        self._modules: dict[str, Any] = {}
        self._lock = threading.RLock()

    def spec(self, name: str) -> FunctionSpec:
        """The function by logical id or folder name."""
        return self.specs[name] if name in self.specs else find_spec(self.specs, name)

    def environment_for(self, spec: FunctionSpec) -> dict[str, str]:
        """The variables applied before the function's import: soft defaults,
        the template's, then the local overrides."""
        env = {k: v for k, v in SOFT_DEFAULTS.items() if k not in os.environ}
        env.update(spec.environment)
        env.update(self.overrides)
        return env

    def handler(self, name: str) -> Any:
        """The function's handler, importing its module the first time."""
        spec = self.spec(name)
        found = self._handlers.get(spec.logical_id)
        if found is not None:
            return found
        with self._lock:
            found = self._handlers.get(spec.logical_id)
            if found is None:
                found = self._load(spec)
                self._handlers[spec.logical_id] = found
            return found

    def module(self, name: str) -> Any:
        """The function's imported module (loading it if needed)."""
        self.handler(name)
        return self._modules[self.spec(name).logical_id]

    def _load(self, spec: FunctionSpec) -> Any:
        ensure_import_paths()
        saved = dict(os.environ)
        os.environ.update(self.environment_for(spec))
        # Each function reads its settings at import; the cached settings of
        # the previous function must not leak into this one.
        _forget_settings()
        try:
            module = (
                self._import_private(spec)
                if self.isolated
                else (importlib.import_module(spec.module_name))
            )
        finally:
            if self.isolated:
                os.environ.clear()
                os.environ.update(saved)
                _forget_settings()
        self._modules[spec.logical_id] = module
        return getattr(module, spec.attribute)

    def _import_private(self, spec: FunctionSpec) -> Any:
        self._copies = getattr(self, "_copies", 0) + 1
        name = f"{spec.module_name}__local{id(self):x}_{self._copies}"
        path = (
            ROOT / Path(spec.code_uri) / (spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
        )
        found = importlib.util.spec_from_file_location(name, path)
        if found is None or found.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(found)
        # Registered while it runs: pydantic resolves annotations through sys.modules.
        sys.modules[name] = module
        try:
            found.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module

    def warm(self, names: list[str] | None = None) -> list[str]:
        """Import the named functions (all by default) ahead of their first call."""
        loaded = []
        for name in names or list(self.specs):
            self.handler(name)
            loaded.append(name)
        return loaded

    def invoke(self, name: str, event: Any, *, request_id: str | None = None) -> Any:
        """Call the handler with a JSON copy of ``event``; its JSON-clean result.

        Raises ``FunctionError`` with Lambda's error payload when it fails.
        """
        spec = self.spec(name)
        request_id = request_id or str(uuid.uuid4())
        try:
            handler = self.handler(spec.logical_id)  # the init phase: not timed
            _ensure_event_loop()
            context = LambdaContext(spec, request_id)
            result = handler(json.loads(json.dumps(event)), context)
            if context.get_remaining_time_in_millis() == 0:
                # Not enforced (a debugger would trip it), but never silent.
                print(
                    f"[invoke] {spec.logical_id} ran past its {spec.timeout} s timeout:"
                    " Lambda would have failed this call",
                    file=sys.stderr,
                )
            return json.loads(json.dumps(result))
        except Exception as exc:
            raise FunctionError(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_exception(exc)[1:],
                }
            ) from exc

    def close(self) -> None:
        """Close the database pools the loaded functions opened."""
        for module in self._modules.values():
            if self.isolated:
                sys.modules.pop(module.__name__, None)
            for value in list(vars(module).values()):
                closer = getattr(value, "close", None)
                if type(value).__name__ == "Database" and callable(closer):
                    try:
                        closer()
                    except Exception as exc:  # shutting down anyway: report and go on
                        print(f"closing {module.__name__}: {exc}", file=sys.stderr)

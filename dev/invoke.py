"""Running a function as Lambda would, without Docker: the handler imported as
``functions.<dir>.app`` with the template's environment (resolved for the
laptop), a Lambda context object, and the JSON round trip the Lambda runtime
makes on the way in and out.

One process hosts every function, like one warm container per function that
happens to share the interpreter: each module is imported once, with its own
environment applied (and ``practice.core.config.get_settings`` re-read) just before
its import, because the functions read their settings at import.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dev.template import ACCOUNT_ID, REGION, ROOT, Function, Resolver

LAYER = ROOT / "layers" / "shared" / "python"
# Soft local defaults a developer's shell and the template may override:
# tracing has no daemon to talk to, and metrics would print EMF after every call.
SOFT_DEFAULTS = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "AWS_SAM_LOCAL": "true",
}
# Locally the developer's shell wins over the template for these (a log level,
# a setting under test); in AWS the template is all there is.
SHELL_WINS = ("POWERTOOLS_", "PRACTICE_")


def ensure_import_paths() -> None:
    """Put the repo root and the layer's python/ dir on sys.path, as Lambda does."""
    for path in (str(LAYER), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


@dataclass
class LambdaContext:
    """What the Python runtime passes as ``context`` (same attribute names and types)."""

    function_name: str = "attempts"
    memory_limit_in_mb: str = "1024"  # the runtime reads it from an env var: a string
    timeout: float = 10.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    tenant_id: Any = None

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.log_stream_name = f"{day}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + self.timeout

    @classmethod
    def of(cls, fn: Function, request_id: str | None = None) -> LambdaContext:
        """The context of one invocation of ``fn``."""
        timeout = fn.timeout if isinstance(fn.timeout, int) else 3
        memory = fn.memory if isinstance(fn.memory, int) else 128
        return cls(fn.name, str(memory), timeout, request_id or str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The handler raised, or its result is not JSON: Lambda's error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "error"))
        self.payload = payload


def _kebab(logical_id: str) -> str:
    """ExportsWorkerFunction -> exports-worker: how a file names a function that
    shares its folder with another."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id.removesuffix("Function")).lower()


def find_function(functions: dict[str, Function], name: str) -> Function:
    """The function named by logical id or CodeUri folder, case-insensitively."""
    for fn in functions.values():
        if name.lower() in (fn.logical_id.lower(), fn.directory.lower(), _kebab(fn.logical_id)):
            return fn
    known = ", ".join(sorted(f"{fn.logical_id} ({fn.directory})" for fn in functions.values()))
    raise KeyError(f"no function {name!r} in the template; known: {known}")


def function_for_event_file(functions: dict[str, Function], filename: str) -> Function:
    """The function of ``events/<function>-<case>[.<status>].json``: the longest
    leading dash-separated part that names a function."""
    parts = Path(filename).name.split(".", 1)[0].split("-")
    for size in range(len(parts), 0, -1):
        try:
            return find_function(functions, "-".join(parts[:size]))
        except KeyError:
            continue
    raise KeyError(f"{filename}: its name does not start with a function's name")


def _forget_settings() -> None:
    config = sys.modules.get("practice.core.config")
    if config is not None:
        config.get_settings.cache_clear()


class FunctionRuntime:
    """Loads functions on first use and invokes them with a Lambda context."""

    def __init__(
        self,
        functions: dict[str, Function],
        resolver: Resolver,
        overrides: dict[str, str] | None = None,
        *,
        isolated: bool = False,
    ) -> None:
        """``isolated``: import private copies of the modules (not ``functions.<dir>.app``
        in sys.modules) and restore the environment after each import, so a test
        can run a gateway beside other tests that import the same functions."""
        self.functions = functions
        self.resolver = resolver
        self.overrides = dict(overrides or {})
        self.isolated = isolated
        self._handlers: dict[str, Any] = {}
        self._modules: dict[str, Any] = {}
        self._lock = threading.RLock()

    def function(self, name: str) -> Function:
        """The function by logical id or folder name."""
        return self.functions.get(name) or find_function(self.functions, name)

    def environment_for(self, fn: Function) -> dict[str, str]:
        """Soft defaults, the template's variables, the shell's POWERTOOLS_*/PRACTICE_*,
        then the stack's own wiring (database, moto), in increasing precedence."""
        env = {k: v for k, v in SOFT_DEFAULTS.items() if k not in os.environ}
        env.update(self.resolver.environment(fn.environment))
        env.update({k: v for k, v in os.environ.items() if k.startswith(SHELL_WINS)})
        env.update(self.overrides)
        return env

    def handler(self, name: str) -> Any:
        """The function's handler, importing its module the first time."""
        fn = self.function(name)
        with self._lock:
            if fn.logical_id not in self._handlers:
                self._handlers[fn.logical_id] = self._load(fn)
            return self._handlers[fn.logical_id]

    def _load(self, fn: Function) -> Any:
        ensure_import_paths()
        saved = dict(os.environ)
        os.environ.update(self.environment_for(fn))
        _forget_settings()  # each function reads its own settings at import
        try:
            module = (
                self._import_private(fn) if self.isolated else importlib.import_module(fn.module)
            )
        finally:
            if self.isolated:
                os.environ.clear()
                os.environ.update(saved)
                _forget_settings()
        self._modules[fn.logical_id] = module
        return getattr(module, fn.attribute)

    def _import_private(self, fn: Function) -> Any:
        name = f"{fn.module}__local{id(self):x}"
        path = ROOT / fn.code_uri / (fn.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
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

    def warm(self) -> list[str]:
        """Import every function ahead of its first call."""
        for name in self.functions:
            self.handler(name)
        return list(self.functions)

    def invoke(self, name: str, event: Any, *, request_id: str | None = None) -> Any:
        """Call the handler with a JSON copy of ``event``; its JSON-clean result.

        Raises ``FunctionError`` with Lambda's error payload when it fails.
        """
        fn = self.function(name)
        request_id = request_id or str(uuid.uuid4())
        try:
            handler = self.handler(fn.logical_id)  # the init phase: not timed
            from practice.web import ensure_event_loop  # the layer is on sys.path by now

            ensure_event_loop()  # a handler without create_handler's would find none here
            context = LambdaContext.of(fn, request_id)
            result = handler(json.loads(json.dumps(event)), context)
            if context.get_remaining_time_in_millis() == 0:
                # Not enforced (a debugger would trip it), but never silent.
                print(f"[invoke] {fn.logical_id} ran past its timeout", file=sys.stderr)
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
                if type(value).__name__ == "Database" and callable(getattr(value, "close", None)):
                    try:
                        value.close()
                    except Exception as exc:  # shutting down anyway: report and go on
                        print(f"closing {module.__name__}: {exc}", file=sys.stderr)

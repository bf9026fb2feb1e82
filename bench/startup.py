"""Cold starts: each function's import beside a bare FastAPI + Mangum + psycopg +
psycopg_pool import, and its first request right after the import (a fresh
process each time, as a new Lambda container), tracing off as in a container
without X-Ray. The practice package is imported as the layer's build ships it,
compiled (layers/shared/Makefile), as the dependencies are. Also the pause of a
full cyclic collection after the first request, with init's objects frozen (as
``practice.core.runtime.entry_point`` leaves them) and not.

Run: `python -m bench startup`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.common import bench_database, print_table, use_function_environment

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
RUNS = 11

# In a fresh process: import the function, then time its first request (a
# request that needs a pooled connection, as a container's first one does).
_COLD = """
import json, sys, time
started = time.perf_counter()
import importlib
module = importlib.import_module(sys.argv[1])
imported = time.perf_counter()
from dev.invoke import LambdaContext
from tests.support import http_event
probe = sys.argv[2]
event = json.load(open(probe)) if probe.startswith("events/") else http_event("GET", probe)
context = LambdaContext()
asked = time.perf_counter()
response = module.handler(event, context)
answered = time.perf_counter()
assert "statusCode" not in response or response["statusCode"] < 500, response
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "first_ms": (answered - asked) * 1000}))
"""
# In a fresh process: the pause of a full cyclic collection once the function
# has served its first request, with init's objects frozen (as entry_point leaves
# them) and not. No harness is imported (its modules would count on both sides):
# the event and the context are written out here.
_FULL_GC = """
import gc, importlib, json, sys, time
module = importlib.import_module(sys.argv[1])
path = sys.argv[2]
http = {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"}
event = {"version": "2.0", "routeKey": "GET " + path, "rawPath": path, "rawQueryString": "",
         "headers": {"host": "localhost"}, "isBase64Encoded": False,
         "requestContext": {"http": http, "requestId": "gc", "stage": "$default"}}
if path.startswith("events/"):
    event = json.load(open(path))

class Context:
    function_name, function_version, memory_limit_in_mb = "bench", "$LATEST", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id, log_group_name, log_stream_name = "gc", "bench", "bench"

    def get_remaining_time_in_millis(self):
        return 30_000

response = module.handler(event, Context())
assert "statusCode" not in response or response["statusCode"] < 500, response
gc.collect()  # what the request left behind
started = time.perf_counter()
gc.collect()
frozen = time.perf_counter() - started
gc.unfreeze()
gc.collect()
started = time.perf_counter()
gc.collect()
print(json.dumps({"full_gc_ms": frozen * 1000,
                  "full_gc_unfrozen_ms": (time.perf_counter() - started) * 1000}))
"""
_BARE = """
import json, time
started = time.perf_counter()
import fastapi, mangum, psycopg, psycopg_pool
print(json.dumps({"import_ms": (time.perf_counter() - started) * 1000}))
"""

# A route of each function that reaches the database without a caller; any
# other function is probed with its first sample event that answers 200.
_PROBES = {"attempts": "/health", "batch": "/attempts/batch/openapi.json"}


def _probe(function: str) -> str:
    if function in _PROBES:
        return _PROBES[function]
    samples = sorted((ROOT / "events").glob(f"{function}-*.200.json"))
    if not samples:
        raise SystemExit(f"no probe for {function}: add one to _PROBES or events/")
    return str(samples[0].relative_to(ROOT))


def _run(code: str, *args: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def _layer_as_built() -> Iterator[Path]:
    """The practice package as the layer's build ships it (its own make target:
    bytecode included), in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="practice-layer-") as out:
        build = ["make", "-s", "-C", str(ROOT / "layers/shared"), "practice"]
        subprocess.run([*build, f"ARTIFACTS_DIR={out}", f"PYTHON={sys.executable}"], check=True)
        yield Path(out) / "python"


def main(argv: list[str] | None = None) -> None:
    """Measure and print the cold-start figures."""
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--runs", type=int, default=RUNS, help="fresh processes per function")
    parser.add_argument("--only", default="", help="these functions (comma-separated), not all")
    args = parser.parse_args(argv or [])
    runs_wanted = args.runs
    functions = [f for f in FUNCTIONS if not args.only or f in args.only.split(",")]
    with ExitStack() as stack:
        db = stack.enter_context(bench_database())
        use_function_environment(db.app_url)
        layer = stack.enter_context(_layer_as_built())
        # Nothing compiled on the way is kept, as in Lambda (read-only /var/task).
        env = os.environ | {"PYTHONPATH": f"{layer}:{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("AWS_XRAY_DAEMON_ADDRESS", None)
        # What SAM's python builder shipped: no bytecode Lambda could use, so every
        # module compiled at each cold start (an empty cache prefix hides all .pyc).
        uncompiled = env | {
            "PYTHONPYCACHEPREFIX": stack.enter_context(tempfile.TemporaryDirectory())
        }
        # Round-robin: each round imports the bare stack and every function once,
        # so a drift of the host lands on all of them alike.
        runs: dict[str, list[dict[str, float]]] = {"bare": []} | {
            f"{function}{kind}": [] for function in functions for kind in ("", " uncompiled")
        }
        for _ in range(runs_wanted):
            runs["bare"].append(_run(_BARE, env=env))
            for function in functions:
                probe = _probe(function)
                module = f"functions.{function}.app"
                cold = _run(_COLD, module, probe, env=env)
                runs[function].append(cold | _run(_FULL_GC, module, probe, env=env))
                runs[f"{function} uncompiled"].append(_run(_COLD, module, probe, env=uncompiled))
        figures = {
            name: {key: statistics.median(r[key] for r in found) for key in found[0]}
            for name, found in runs.items()
        }
        bare = figures["bare"]["import_ms"]
        rows = []
        for function in functions:
            probe = _probe(function)
            imported, first = figures[function]["import_ms"], figures[function]["first_ms"]
            rows.append(
                (
                    f"{function}: import",
                    f"{imported:.1f} ms",
                    f"{bare:.1f} ms bare",
                    f"{imported / bare:.2f}x (target ≤1.3x)",
                )
            )
            rows.append(
                (f"{function}: first request ({probe})", f"{first:.1f} ms", "target ≤ 50 ms", "")
            )
            pause, unfrozen = (figures[function][k] for k in ("full_gc_ms", "full_gc_unfrozen_ms"))
            rows.append(
                (
                    f"{function}: a full collection after the first request, init frozen",
                    f"{pause:.2f} ms",
                    f"{unfrozen:.2f} ms not frozen",
                    f"{pause / unfrozen:.3f}x",
                )
            )
            without = figures[f"{function} uncompiled"]["import_ms"]
            rows.append(
                (
                    f"{function}: import with no usable bytecode (SAM's python builder)",
                    f"{without:.1f} ms",
                    f"{imported:.1f} ms as built",
                    f"{without / imported:.2f}x",
                )
            )
    print_table(f"cold start, median of {runs_wanted} fresh processes", rows)


if __name__ == "__main__":
    main()

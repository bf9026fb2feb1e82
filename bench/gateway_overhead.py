"""What the local gateway adds per request: GET /health through the gateway over
HTTP (keep-alive) against the same handler called directly with a prebuilt
event, in the same process and on the same database. Prints both p50s (the
direct call is the baseline) and the difference.

    .venv/bin/python -m bench.gateway_overhead [--requests 1000]

A throwaway database on DATABASE_URL's server when set, else on an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import time
from collections.abc import Callable

from bench.common import bench_database
from dev.gateway import Gateway, GatewayServer, HttpRequest, build_event
from dev.invoke import LambdaContext
from dev.template import load_template

FUNCTION = "AttemptsFunction"
ROUNDS = 5  # the paths alternate in blocks, so drift hits them alike


def sample(call: Callable[[], int], count: int) -> list[float]:
    """Milliseconds per call, each call checked for a 200."""
    times = []
    for _ in range(count):
        begin = time.perf_counter()
        status = call()
        times.append((time.perf_counter() - begin) * 1000)
        if status != 200:
            raise RuntimeError(f"GET /health answered {status}")
    return times


def describe(times: list[float]) -> str:
    """``p50 … ms (p90 …, p99 …)``."""
    cuts = statistics.quantiles(times, n=100)
    return f"p50 {statistics.median(times):.3f} ms (p90 {cuts[89]:.3f}, p99 {cuts[98]:.3f})"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per path")
    # `python -m bench` calls main() with its own argv in sys.argv: read only ours.
    args = parser.parse_args(argv if argv is not None else [])
    per_round = max(1, args.requests // ROUNDS)
    template = load_template()
    with bench_database() as db, contextlib.redirect_stdout(sys.stderr):
        app_url = db.app_url
        overrides = {
            "PRACTICE_DATABASE_URL": app_url,
            "PRACTICE_S3_ENDPOINT_URL": "http://127.0.0.1:9",  # /health never uses S3
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        # Isolated: `python -m bench` may have imported the function for another
        # benchmark's database already; this one gets its own copy.
        gateway = Gateway.from_template(template, overrides=overrides, isolated=True)
        server = GatewayServer(gateway, "127.0.0.1", 0).start()
        try:
            handler = gateway.runtime.handler(FUNCTION)
            fn = gateway.runtime.function(FUNCTION)
            host, port = server.server_address[:2]
            request = HttpRequest("GET", "/health", headers=[("Host", f"{host}:{port}")])
            event = build_event(request, route_key="GET /health")

            def direct() -> int:
                return handler(event, LambdaContext.of(fn))["statusCode"]

            def in_process() -> int:
                return gateway.handle(request).status

            connection = http.client.HTTPConnection(host, port)

            def over_http() -> int:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                return response.status

            paths = {"direct": direct, "handle": in_process, "http": over_http}
            for call in paths.values():
                sample(call, 50)  # warm-up: imports, pool, connection
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(ROUNDS):
                for name, call in paths.items():
                    times[name] += sample(call, per_round)
            connection.close()
        finally:
            server.stop()
            gateway.runtime.close()
    direct_p50 = statistics.median(times["direct"])
    http_p50 = statistics.median(times["http"])
    handle_p50 = statistics.median(times["handle"])
    count = len(times["direct"])
    print(f"GET /health, {count} requests per path, one process, one database")
    print(f"  baseline: handler(event, context) called directly   {describe(times['direct'])}")
    print(f"  through the local gateway over HTTP (keep-alive)   {describe(times['http'])}")
    print(f"  Gateway.handle() in process, no HTTP                {describe(times['handle'])}")
    print(f"  added by the gateway per request (p50): {http_p50 - direct_p50:+.3f} ms over HTTP")
    print(f"  added by Gateway.handle() alone (p50):   {handle_p50 - direct_p50:+.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

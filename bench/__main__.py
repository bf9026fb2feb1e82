"""`python -m bench` (make bench): every benchmark with its defaults, each in a
process of its own; `python -m bench NAME [ARGS…]`: one benchmark in this process.

Isolated because a benchmark leaves state behind: the startup benchmark imports
the function, whose pool then points at a database that benchmark stopped."""

from __future__ import annotations

import importlib
import subprocess
import sys

BENCHMARKS = [
    "startup",
    "attempts",
    "save_scaling",
    "plans",
    "batch",
    "gateway_overhead",
    "seed_bench",
    "load",
    "exports",
    "tracking",
    "webhooks",
    "mixed",
    "reporting",
]


def main(argv: list[str]) -> int:
    """Run one named benchmark with its arguments, or each of them in its own process."""
    if argv:
        importlib.import_module(f"bench.{argv[0]}").main(argv[1:])
        return 0
    failed = [
        name
        for name in BENCHMARKS
        if subprocess.run([sys.executable, "-m", "bench", name], check=False).returncode
    ]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`python -m bench`: every benchmark with its defaults; `python -m bench NAME [ARGS…]`:
one benchmark with its own arguments."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["startup", "attempts", "gateway_overhead", "seed_bench"]


def main(argv: list[str]) -> None:
    """Run one named benchmark with its arguments, or all of them."""
    if argv:
        importlib.import_module(f"bench.{argv[0]}").main(argv[1:])
        return
    for name in BENCHMARKS:
        importlib.import_module(f"bench.{name}").main([])


if __name__ == "__main__":
    main(sys.argv[1:])

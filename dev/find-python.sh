#!/usr/bin/env bash
# Prints the path of a Python 3.13 interpreter: one on PATH, else one under pyenv.
# Lambda runs python3.13, so the project tests with exactly that minor version.
set -euo pipefail
for candidate in python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
    command -v "$candidate"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  for candidate in "$(pyenv root)"/versions/3.13*/bin/python3; do
    if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
  done
fi
echo "error: Python 3.13 not found. Install it (e.g. 'pyenv install 3.13') or put python3.13 on PATH." >&2
exit 1

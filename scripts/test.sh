#!/usr/bin/env bash
# Set up everything (see setup.sh), lint, then run the whole test suite. Exit code 5 from pytest
# ("no tests collected") is a failure like any other.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Set up everything (see setup.sh; with Chromium for the web page's browser tests), lint, then run the whole test suite. Exit code 5 from pytest
# ("no tests collected") is a failure like any other.
set -euo pipefail
cd "$(dirname "$0")/.."
SINGSONG_SETUP_TESTS=1 ./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"

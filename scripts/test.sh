#!/usr/bin/env bash
# The whole test suite, slow end-to-end tests included (pass -m "not slow" to skip them).
# Installs what is missing first; every service the tests need is started by the tests
# themselves (on free loopback ports) and stopped when they finish.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BROWSER=1 bash scripts/bootstrap.sh
export VOMAGE_ENV=local
.venv/bin/ruff check .
exec .venv/bin/pytest -ra --durations=12 "$@"

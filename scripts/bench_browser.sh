#!/usr/bin/env bash
# The live view measured in headless Chromium (see benchmarks/browser.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BROWSER=1 bash scripts/bootstrap.sh
export VOMAGE_ENV=local
exec .venv/bin/python -m benchmarks.browser "$@"

#!/usr/bin/env bash
# The upload → complete benchmark on the embedded stack (see benchmarks/run.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export VOMAGE_ENV=local
exec .venv/bin/python -m benchmarks.run "$@"

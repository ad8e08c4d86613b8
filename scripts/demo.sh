#!/usr/bin/env bash
# The main job on the embedded local stack: install what is missing, start moto, redis,
# the model server and a Dagster daemon, upload the bundled samples, let the S3 sensor
# process them, print the results table, and stop everything that was started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export VOMAGE_ENV=local
exec .venv/bin/vomage demo "$@"

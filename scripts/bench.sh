#!/usr/bin/env bash
# The upload → complete benchmark on the embedded stack (see benchmarks/run.py);
# `--profile aws` runs it under AWS's published latencies (a simulation).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
export VOMAGE_ENV=local
# `--speech …`: end of speech → transcript, mood, image, three ways (benchmarks/speech.py).
if [[ "${1:-}" == "--speech" ]]; then
  shift
  exec .venv/bin/python -m benchmarks.speech "$@"
fi
# `--personal`: N users' recordings of one mood → N distinct images; the ETA against the time taken.
if [[ "${1:-}" == "--personal" ]]; then
  shift
  exec .venv/bin/python -m benchmarks.personal "$@"
fi
# `--live-load`: 1,000 WebSockets following 10 recordings while a prober calls the API.
if [[ "${1:-}" == "--live-load" ]]; then
  shift
  exec .venv/bin/python -m benchmarks.live_load "$@"
fi
# `--capacity`: the highest steady recordings/s under the AWS profile, streamed transcripts,
# model time simulated (benchmarks/capacity.py); `--capacity --quick` for a short run.
if [[ "${1:-}" == "--capacity" ]]; then
  shift
  exec .venv/bin/python -m benchmarks.capacity "$@"
fi
exec .venv/bin/python -m benchmarks.run "$@"

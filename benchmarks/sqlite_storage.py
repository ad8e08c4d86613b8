"""What Dagster's SQLite storage costs per run and per event, and what the single-machine
deployment's storage (vomage_dagster/runtime/sqlite_storage.py) costs for the same writes.

    .venv/bin/python -m benchmarks.sqlite_storage [--runs 40]

For each storage, on a fresh Dagster home: a new run's first planned event (which creates
the run's database), each later planned event, an engine event, six planned events written
one at a time and as one batch, and building a Dagster instance on an existing home (what a
Celery run worker does for every run). Prints a table (medians, p95, ratios) and writes
benchmarks/results/sqlite_storage.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STORAGES = {
    "dagster": "",  # Dagster's default: `storage: sqlite:` under the home
    "vomage": ("storage:\n  custom:\n    module: vomage_dagster.runtime.sqlite_storage\n"
               "    class: FastSqliteStorage\n    config:\n      base_dir: {home}\n"),
}
KEYS = "abcdef"


@contextmanager
def _timed(samples: dict[str, list[float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    samples.setdefault(name, []).append(time.perf_counter() - started)


def measure(storage: str, runs: int) -> dict[str, dict[str, float]]:
    from dagster import DagsterInstance

    from vomage_dagster.testing.dagster_events import engine_event, planned

    home = Path(tempfile.mkdtemp(prefix=f"vomage-sqlite-bench-{storage}-"))
    (home / "dagster.yaml").write_text(STORAGES[storage].format(home=json.dumps(str(home))))
    samples: dict[str, list[float]] = {}
    with DagsterInstance.from_config(str(home)) as instance:
        events = instance.event_log_storage
        for _ in range(runs):
            rid = str(uuid.uuid4())
            with _timed(samples, "new run's first planned event"):
                events.store_event(planned(rid, "a"))
            for key in KEYS[1:]:
                with _timed(samples, "a later planned event"):
                    events.store_event(planned(rid, key))
            with _timed(samples, "an engine event"):
                events.store_event(engine_event(rid))
            one_by_one, batched = str(uuid.uuid4()), str(uuid.uuid4())
            with _timed(samples, "6 planned events, one at a time"):
                for key in KEYS:
                    events.store_event(planned(one_by_one, key))
            with _timed(samples, "6 planned events, one batch"):
                events.store_event_batch([planned(batched, key) for key in KEYS])
            assert len(events.get_logs_for_run(batched)) == len(KEYS)
        for _ in range(runs):
            with _timed(samples, "a Dagster instance (built, one query)"), \
                    DagsterInstance.from_config(str(home)) as other:
                other.get_runs(limit=1)
    return {name: {"p50_ms": round(1000 * statistics.median(xs[3:]), 2),
                   "p95_ms": round(1000 * statistics.quantiles(xs[3:], n=20)[-1], 2)}
            for name, xs in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    found = {storage: measure(storage, args.runs) for storage in STORAGES}
    print(f"\n{'operation':<40} {'dagster p50/p95 (ms)':>22} {'vomage p50/p95 (ms)':>22} {'ratio':>7}")
    for name, theirs in found["dagster"].items():
        ours = found["vomage"][name]
        print(f"{name:<40} {theirs['p50_ms']:>10.2f} / {theirs['p95_ms']:<9.2f} "
              f"{ours['p50_ms']:>10.2f} / {ours['p95_ms']:<9.2f} {theirs['p50_ms'] / ours['p50_ms']:>6.1f}×")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "sqlite_storage.json"
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": args.runs,
                               "storages": found}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

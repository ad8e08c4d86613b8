"""Partition count against time: the ingest's registration of a new partition, a recording's
run through `published_record`, and the UI's partition view, at 0 / 10k / 100k partitions.

    PYTHONPATH=. VOMAGE_ENV=local .venv/bin/python -m benchmarks.partitions [--levels 0,10000,100000]

On a private stack (the local models as they are: the run's total includes their time; the
`published_record` figure is the time from `mood_image`'s materialization to its own), with
a SQLite instance on disk per level (the local deployment's storage). The operations are
`vomage_dagster/testing/partition_scale.py`, which `tests/test_partition_scale.py` holds
to work at 100,000. Writes benchmarks/results/partitions.json and merges it into
capacity.json under "partitions".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.stacks import start_stack

from .run import RESULTS


def materialized_at(instance, run_id: str, asset: str) -> float | None:
    """When the run stored `asset`'s materialization (epoch seconds), from the event log."""
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type_value == "ASSET_MATERIALIZATION" \
                and event.asset_key.path[-1] == asset:
            return entry.timestamp
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,10000,100000")
    parser.add_argument("--repeat", type=int, default=3, help="recordings per level (medians reported)")
    parser.add_argument("--out", default=str(RESULTS / "partitions.json"))
    args = parser.parse_args()

    from dagster import DagsterInstance

    from vomage_dagster.domain.keys import parse_upload_key, upload_key
    from vomage_dagster.local.aws import stack
    from vomage_dagster.local.client.uploads import upload_file
    from vomage_dagster.local.demo.samples import SAMPLES_DIR
    from vomage_dagster.resources.build import build_resources
    from vomage_dagster.settings import load_settings
    from vomage_dagster.testing import partition_scale as scale

    state = Path(tempfile.mkdtemp(prefix="vomage-partitions-"))
    os.environ.update({"VOMAGE_STATE_DIR": str(state), "VOMAGE_ENV": "local"})
    rows = []
    try:
        info, settings = start_stack()
        resources = build_resources(settings)
        for level in [int(x) for x in args.levels.split(",") if x.strip()]:
            home = state / f"home-{level}"
            home.mkdir(parents=True)
            with DagsterInstance.local_temp(str(home)) as instance:
                started = time.perf_counter()
                present = scale.preload(instance, level)
                preload_s = time.perf_counter() - started
                register, run, publish, view = [], [], [], []
                for _ in range(args.repeat):
                    rid = upload_file(settings, SAMPLES_DIR / "en_joy.m4a", "scale")
                    plan, s = scale.register(instance, resources["tracker"],
                                             parse_upload_key(upload_key("scale", rid, "m4a")))
                    register.append(s)
                    result, s = scale.publish(instance, resources, plan.runs[0])
                    assert result.success and scale.published_partition(instance) == rid
                    run.append(s)
                    a, b = (materialized_at(instance, result.run_id, asset)
                            for asset in ("mood_image", "published_record"))
                    if a and b:
                        publish.append(b - a)
                with scale.ui_context(instance, home) as context:
                    scale.partition_view(context)  # the first query loads the code location's snapshot
                    for _ in range(args.repeat):
                        node, s = scale.partition_view(context)
                        view.append(s)
                    keys = len(node["partitionKeysByDimension"][0]["partitionKeys"])
                row = {"preloaded": level, "partitions": present + args.repeat, "preload_s": round(preload_s, 1),
                       "ingest_register_s": round(statistics.median(register), 3),
                       "run_total_s": round(statistics.median(run), 2),
                       "published_record_s": round(statistics.median(publish), 3) if publish else None,
                       "ui_partition_view_s": round(statistics.median(view), 3), "ui_keys": keys,
                       "load_average_1m": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        stack.down(load_settings())
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "storage": "sqlite", "levels": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    capacity = RESULTS / "capacity.json"
    doc = json.loads(capacity.read_text()) if capacity.exists() else {}
    doc["partitions"] = out
    capacity.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} (and 'partitions' in {capacity})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

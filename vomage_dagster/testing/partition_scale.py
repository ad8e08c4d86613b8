"""The three things a large `recordings` partition count could slow down, as functions the
scale test (`tests/test_partition_scale.py`) and its benchmark (`benchmarks/partitions.py`)
both call: the ingest registering a new recording's partition, `published_record`'s
materialization for it, and the Dagster UI's partition view of an asset (the GraphQL
query the asset page asks for: partition keys, per-partition status, counts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from vomage_dagster.assets.partitions import recordings

PRELOAD_PREFIX = "rec-preload-"
CHUNK = 10_000

# What the asset page's partitions tab asks for (dagster-webserver's GraphQL).
PARTITIONS_QUERY = """
query AssetPartitions($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      partitionStats { numMaterialized numFailed numMaterializing numPartitions }
      assetPartitionStatuses {
        __typename
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
      }
    }
    ... on AssetNotFoundError { message }
  }
}
"""


def preload(instance: DagsterInstance, total: int) -> int:
    """Bring the `recordings` partitions to at least `total` with ids no upload names; the count after."""
    have = len(instance.get_dynamic_partitions(recordings.name))
    while have < total:
        chunk = [f"{PRELOAD_PREFIX}{i:07d}" for i in range(have, min(total, have + CHUNK))]
        instance.add_dynamic_partitions(recordings.name, chunk)
        have += len(chunk)
    return len(instance.get_dynamic_partitions(recordings.name))


def register(instance: DagsterInstance, tracker, upload_key) -> tuple[object, float]:
    """The ingest's planning of one new upload (partition added, run requested); the plan and seconds."""
    from vomage_dagster.ingest.planner import plan_runs

    started = time.perf_counter()
    plan = plan_runs(instance, tracker, [upload_key], max_batch=10)
    return plan, time.perf_counter() - started


def publish(instance: DagsterInstance, resources: dict, request) -> tuple[object, float]:
    """The run the ingest requested, in process: the six assets of the recording, through
    `published_record`; the result and seconds."""
    from vomage_dagster.assets.recording import ASSETS

    started = time.perf_counter()
    result = materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                         partition_key=request.partition_key, raise_on_error=False)
    return result, time.perf_counter() - started


def published_partition(instance: DagsterInstance) -> str | None:
    event = instance.get_latest_materialization_event(AssetKey("published_record"))
    return None if event is None else event.dagster_event.partition


@contextmanager
def ui_context(instance: DagsterInstance, workdir: Path) -> Iterator[object]:
    """A GraphQL request context on the code location, as the webserver holds it."""
    from dagster_graphql.test.utils import define_out_of_process_context

    workspace = workdir / "workspace.yaml"
    workspace.write_text("load_from:\n  - python_module:\n      module_name: vomage_dagster.definitions\n"
                         "      location_name: vomage_dagster\n")
    with define_out_of_process_context(str(workspace), None, instance) as context:
        yield context


def partition_view(context, asset: str = "published_record") -> tuple[dict, float]:
    """The UI's partition view of `asset`: the GraphQL answer and seconds."""
    from dagster_graphql.test.utils import execute_dagster_graphql

    started = time.perf_counter()
    result = execute_dagster_graphql(context, PARTITIONS_QUERY, variables={"assetKey": {"path": [asset]}})
    seconds = time.perf_counter() - started
    if result.errors:
        raise RuntimeError(f"GraphQL errors: {result.errors}")
    return result.data["assetNodeOrError"], seconds

"""Several recordings in one run, one partition each (micro-batching).

A run launched for a range of `recordings` partitions (the sensor groups recordings
that arrive together, up to `MAX_BATCH`) materializes each asset once for all of them:
one run process and one set of step events instead of one per recording, and within a
stage every recording of the batch is in flight at once, so the speech model always has
the next Transcribe job waiting (DESIGN §5: 50 partitions in one run ≈ 6.6 s,
50 runs ≈ 30 s).

Recordings stay independent inside a batch. A recording whose stage fails is marked
`failed` in the status table with its reason and leaves the batch: the stages after it
skip it and its partitions carry `outcome: failed …` metadata instead of an output in
S3. Dagster materializes a partition range as a whole, so those partitions still show
a materialization in the catalog: the status table and that metadata say what happened.
A run of one recording keeps the plain semantics: a failing stage fails the run.

Values between stages: a one-recording run passes the stage output itself; a batch
passes `{recording_id: output}` (see `resources.io_manager`).
"""

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, BetaWarning, Failure, MetadataValue

from ..resources.tracker import ProcessingTracker
from ..settings import Settings
from .failures import recording_stage

# The product plan: batch up to 10 requests. The sensors use `VOMAGE_MAX_BATCH`, which
# can lower it (1 turns batching off); UI backfills and stage threads use the default.
MAX_BATCH = Settings.max_batch
# Every recording of a batch is in flight at once within a stage: on AWS the stages
# wait on remote services (a Transcribe job takes seconds), so a batch of 10 then costs
# one recording's latency per stage, not ten; locally the model server queues the jobs.
STAGE_WORKERS = MAX_BATCH
# A backfill launched from the UI runs in batches of the same size as the sensor's.
# (`backfill_policy` is marked beta in Dagster 1.13; said once here, not at every import.)
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
BATCH_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=MAX_BATCH)

# One pool for the life of the run process: its threads keep their DynamoDB Table
# resources (see resources.aws) from stage to stage.
_pool = ThreadPoolExecutor(max_workers=STAGE_WORKERS, thread_name_prefix="stage")

# A stage for one recording: (recording id, its inputs) → (output, metadata).
Stage = Callable[[str, dict[str, Any]], tuple[dict, dict]]


def is_batch(keys: list[str] | tuple[str, ...]) -> bool:
    return len(keys) > 1


def run_stage(context: AssetExecutionContext, tracker: ProcessingTracker, stage: Stage,
              **inputs: Any) -> Any:
    """Run `stage` for every recording of the run and return the asset's value."""
    keys = list(context.partition_keys)
    if not is_batch(keys):
        rid = keys[0]
        with recording_stage(tracker, rid):
            out, metadata = stage(rid, inputs)
        context.add_output_metadata(metadata)
        return out

    ready = [rid for rid in keys if all(rid in value for value in inputs.values())]
    for rid in keys:
        if rid not in ready:
            context.add_asset_metadata({"outcome": "skipped: failed in an earlier stage"},
                                       partition_key=rid)

    def one(rid: str) -> tuple[dict, dict] | Exception:
        try:
            with recording_stage(tracker, rid):
                return stage(rid, {name: value[rid] for name, value in inputs.items()})
        except Exception as exc:  # recorded as failed by recording_stage; the batch goes on
            return exc

    results = dict(zip(ready, _pool.map(one, ready), strict=True))

    outputs: dict[str, dict] = {}
    for rid, result in results.items():
        if isinstance(result, Exception):
            reason = result.description if isinstance(result, Failure) else repr(result)
            context.log.warning(f"recording {rid} failed in this stage: {reason}")
            context.add_asset_metadata({"outcome": MetadataValue.text(f"failed: {reason}")},
                                       partition_key=rid)
        else:
            out, metadata = result
            outputs[rid] = out
            context.add_asset_metadata({"outcome": "ok", **metadata}, partition_key=rid)
    context.add_output_metadata({"batch_size": len(keys), "succeeded": len(outputs)})
    if not outputs:
        raise Failure(description=f"every recording of this batch of {len(keys)} failed",
                      allow_retries=False)
    return outputs

"""Run-failure and run-cancel sensors: a run that died or was stopped leaves its
recordings `failed` (retryable), never forever in progress.

Bad input is already recorded by the asset that found it (and this sensor's write is
then refused as the status is final); this catches what no asset could: a crashed or
killed run worker, a timeout, an error raised outside a stage. A run the instance will
retry is left alone until its last attempt has failed. A run requested under a claim
fails only the recordings whose claim it still holds: one that stood down because another
run took over leaves that run's recording alone.
"""

from dagster import (
    DagsterRunStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    WILL_RETRY_TAG,
)

from ..domain.errors import ProcessingError
from ..jobs import process_recording
from ..resources.records import RecordsTable
from ..resources.tracker import ProcessingTracker
from ..run_tags import CLAIM_TAG, recordings_of_run
from ..settings import load_settings
from .planning import keys_in_range
from .status import EVERY_DAEMON_LOOP_S, default_status


@run_failure_sensor(monitored_jobs=[process_recording], minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
                    default_status=default_status(load_settings(), "failures"),
                    description="A failed process_recording run marks its recordings failed.")
def recording_failure_sensor(context: RunFailureSensorContext, tracker: ProcessingTracker,
                             records: RecordsTable) -> None:
    if context.dagster_run.tags.get(WILL_RETRY_TAG) == "true":
        # The instance's run retries (deploy/dagster.yaml, the local cluster) will run it
        # again: marking the recordings failed now would make the retry's writes refused.
        # The last attempt carries will_retry=false and lands here.
        context.log.info(f"run {context.dagster_run.run_id} failed and will be retried")
        return
    # A fixed message: the failure event's text can hold exception details and paths;
    # the operator finds them on the run, whose id the message names.
    message = f"the processing run {context.dagster_run.run_id[:8]} failed"
    claim = context.dagster_run.tags.get(CLAIM_TAG)
    for rid, attempt in _recordings(context).items():
        if tracker.fail(rid, ProcessingError("run_failed", message, retryable=True), attempt, claim):
            retract_record(records, rid)
            context.log.info(f"marked {rid} failed after run {context.dagster_run.run_id} failed")


@run_status_sensor(run_status=DagsterRunStatus.CANCELED, monitored_jobs=[process_recording],
                   minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
                   default_status=default_status(load_settings(), "failures"),
                   description="A canceled or terminated process_recording run marks its recordings failed.")
def recording_canceled_sensor(context: RunStatusSensorContext, tracker: ProcessingTracker,
                              records: RecordsTable) -> None:
    message = f"the processing run {context.dagster_run.run_id[:8]} was canceled; retry it with `vomage retry`"
    claim = context.dagster_run.tags.get(CLAIM_TAG)
    for rid, attempt in _recordings(context).items():
        if tracker.fail(rid, ProcessingError("run_canceled", message, retryable=True), attempt, claim):
            retract_record(records, rid)
            context.log.info(f"marked {rid} failed after run {context.dagster_run.run_id} was canceled")


def retract_record(records: RecordsTable, recording_id: str) -> None:
    """Remove the record of a recording just failed from outside its run. The last stage
    writes the record and then marks the recording complete; a run killed between the two
    leaves a record for a recording that is now failed. Failed means no published post (a
    retry writes it again)."""
    found = records.get(recording_id)
    if found is not None:
        records.delete(found)


def _recordings(context: RunStatusSensorContext) -> dict[str, int | None]:
    """Recording id → the attempt the run was for. The sensor's runs name both in tags
    (so a late failure of an old attempt leaves a newer one alone); a run launched from
    the UI has only its partition or partition range (attempt None: whatever is current)."""
    tags = context.dagster_run.tags
    if found := recordings_of_run(tags):
        return dict(found)
    if tags.get("dagster/partition"):
        return {tags["dagster/partition"]: None}
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return dict.fromkeys(keys_in_range(context.instance, tags[ASSET_PARTITION_RANGE_START_TAG],
                                           tags[ASSET_PARTITION_RANGE_END_TAG]))
    return {}

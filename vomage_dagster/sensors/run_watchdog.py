"""Run-failure and run-cancel sensors: a run that died or was stopped leaves its
recordings `failed` (retryable), never forever in progress.

Bad input is already recorded by the asset that found it (and this sensor's write is
then refused as the status is final); this catches what no asset could: a crashed or
killed run worker, a timeout, an error raised outside a stage. A run the instance will
retry is left alone until its last attempt has failed. A failed run fails only the
recordings it owns: one that stood down because another run owns the attempt leaves that
run's recording alone, and one it never came to own (it died before starting, a daemon
killed while launching it) is queued again through the ingest, as the stranded sensor
would, three times at most, then failed. A canceled run fails what it owns or nobody owns.

A failed run's recordings are retried automatically first (`ProcessingTracker.fail_or_retry`:
a new attempt after a backoff, a bounded number of times), then failed; a canceled run's
are failed at once (a person stopped it). A recording the run itself already retried (its
own stage failed first) is left to that retry.
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

from vomage_dagster.assets.partitions import recordings_in_range
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.run_tags import recordings_of_run
from vomage_dagster.jobs import process_recording
from vomage_dagster.resources.auto_retry import REFUSED
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.sensors import DEFAULT_STATUS, EVERY_DAEMON_LOOP_S


@run_failure_sensor(monitored_jobs=[process_recording], minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
                    default_status=DEFAULT_STATUS,
                    description="A failed process_recording run marks its recordings failed.")
def recording_failure_sensor(context: RunFailureSensorContext, tracker: ProcessingTracker,
                             queue: UploadQueue) -> None:
    if context.dagster_run.tags.get(WILL_RETRY_TAG) == "true":
        # The instance's run retries (deploy/dagster.yaml, the local cluster) will run it
        # again: marking the recordings failed now would make the retry's writes refused.
        # The last attempt carries will_retry=false and lands here.
        context.log.info(f"run {context.dagster_run.run_id} failed and will be retried")
        return
    # A fixed message: the failure event's text can hold exception details and paths;
    # the operator finds them on the run, whose id the message names.
    _fail_recordings(context, tracker, ProcessingError(
        "run_failed", f"the processing run {context.dagster_run.run_id[:8]} failed", retryable=True), queue)


@run_status_sensor(run_status=DagsterRunStatus.CANCELED, monitored_jobs=[process_recording],
                   minimum_interval_seconds=EVERY_DAEMON_LOOP_S, default_status=DEFAULT_STATUS,
                   description="A canceled or terminated process_recording run marks its recordings failed.")
def recording_canceled_sensor(context: RunStatusSensorContext, tracker: ProcessingTracker) -> None:
    _fail_recordings(context, tracker, ProcessingError(
        "run_canceled", f"the processing run {context.dagster_run.run_id[:8]} was canceled; "
                        "retry it with `vomage retry`", retryable=True))


def _fail_recordings(context: RunStatusSensorContext, tracker: ProcessingTracker, error: ProcessingError,
                     queue: UploadQueue | None = None) -> None:
    """Fail the run's recordings it owns (or nobody owns); with `queue`, queue again
    instead those it never came to own."""
    run = context.dagster_run
    owner = run.root_run_id or run.run_id
    for rid, attempt in _recordings(context).items():
        item = tracker.status.get(rid)
        current = int((item or {}).get("attempt", 1))
        if attempt is None and ((item or {}).get("last_error") or {}).get("owner") == owner:
            continue  # this run's own stage failed and retried it: the new attempt is not this run's
        upload = parse_upload_key(str((item or {}).get("upload_key", "")))
        if (queue is not None and upload is not None and attempt in (None, current) and life.may_requeue(item)
                and tracker.requeue(rid, current) is not None):
            queue.send({"recording_id": rid, "s3_key": upload.key, "user_id": upload.user_id,
                        "attempt": current, "metadata": {}})
            context.log.info(f"queued {rid} again: run {run.run_id} failed before processing it")
            continue
        outcome = tracker.fail_or_retry(rid, error, attempt, owner, (item or {}).get("language"))
        if outcome != REFUSED:
            tracker.retract(rid)
            context.log.info(f"recording {rid} {outcome} ({error.code}) after run {run.run_id}")


def _recordings(context: RunStatusSensorContext) -> dict[str, int | None]:
    """Recording id → the attempt the run was for. The ingest's runs name both in tags
    (so a late failure of an old attempt leaves a newer one alone); a run launched from
    the UI has only its partition or partition range (attempt None: whatever is current)."""
    tags = context.dagster_run.tags
    if found := recordings_of_run(tags):
        return dict(found)
    if tags.get("dagster/partition"):
        return {tags["dagster/partition"]: None}
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return dict.fromkeys(recordings_in_range(context.instance, tags[ASSET_PARTITION_RANGE_START_TAG],
                                                 tags[ASSET_PARTITION_RANGE_END_TAG]))
    return {}

"""Run-failure sensor: a run that died for any reason leaves its recordings `failed`.

Bad input is already recorded by the asset that found it (and this sensor's write is
then refused as the status is final); this catches what no asset could: a crashed or
killed run worker, a timeout, an error raised outside a stage. A run the instance will
retry is left alone until its last attempt has failed.
"""

from dagster import RunFailureSensorContext, run_failure_sensor
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    WILL_RETRY_TAG,
)

from ..domain.errors import ProcessingError
from ..jobs import process_recording
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .planning import keys_in_range, recordings_of_run
from .status import EVERY_DAEMON_LOOP_S, default_status


@run_failure_sensor(monitored_jobs=[process_recording], minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
                    default_status=default_status(load_settings(), "failures"),
                    description="A failed process_recording run marks its recordings failed.")
def recording_failure_sensor(context: RunFailureSensorContext, tracker: ProcessingTracker) -> None:
    if context.dagster_run.tags.get(WILL_RETRY_TAG) == "true":
        # The instance's run retries (deploy/dagster.yaml, the local cluster) will run it
        # again: marking the recordings failed now would make the retry's writes refused.
        # The last attempt carries will_retry=false and lands here.
        context.log.info(f"run {context.dagster_run.run_id} failed and will be retried")
        return
    rids = _recordings(context)
    message = (context.failure_event.message or "the run failed")[:500]
    for rid in rids:
        if tracker.fail(rid, ProcessingError("run_failed", message, retryable=True)):
            context.log.info(f"marked {rid} failed after run {context.dagster_run.run_id} failed")


def _recordings(context: RunFailureSensorContext) -> list[str]:
    """The sensor's runs name their recordings in tags; a run launched from the UI has
    its partition or partition range."""
    tags = context.dagster_run.tags
    if found := recordings_of_run(tags):
        return list(found)
    if tags.get("dagster/partition"):
        return [tags["dagster/partition"]]
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return keys_in_range(context.instance, tags[ASSET_PARTITION_RANGE_START_TAG],
                             tags[ASSET_PARTITION_RANGE_END_TAG])
    return []

"""Run-failure sensor: a run that died for any reason leaves its recording `failed`.

Bad input is already recorded by the asset that found it (and this sensor's write is
then refused as the status is final); this catches what no asset could: a crashed or
killed run worker, a timeout, an error raised outside a stage.
"""

from dagster import RunFailureSensorContext, run_failure_sensor

from ..domain.errors import ProcessingError
from ..jobs import process_recording
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .status import default_status


@run_failure_sensor(monitored_jobs=[process_recording], minimum_interval_seconds=5,
                    default_status=default_status(load_settings(), "failures"),
                    description="A failed process_recording run marks its recording failed.")
def recording_failure_sensor(context: RunFailureSensorContext, tracker: ProcessingTracker) -> None:
    rid = context.dagster_run.tags.get("dagster/partition")
    if not rid:
        return
    message = (context.failure_event.message or "the run failed")[:500]
    if tracker.fail(rid, ProcessingError("run_failed", message, retryable=True)):
        context.log.info(f"marked {rid} failed after run {context.dagster_run.run_id} failed")

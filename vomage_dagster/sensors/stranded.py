"""Stranded-recordings sensor: nothing stays in progress forever.

A recording can stall outside any run: a sensor tick that died after claiming it, a
`vomage retry` killed between resetting the status and queueing the message, a message
lost. Every `INTERVAL_S` this sensor looks for recordings not final whose status has not
changed for `STALL_AFTER` (both periods are settings: `VOMAGE_STALL_AFTER_S`, 10 min, and
`VOMAGE_DEAD_RUN_AFTER_S`, 30 min):

- a run of the current attempt is still in flight: left alone (long, not stranded),
  unless the status has not moved for `DEAD_RUN_AFTER`: then the run's worker is taken
  for dead (the default run launcher cannot tell a killed run process from a slow one),
  the run is terminated and reported failed, and that attempt of the recording is failed
  (retryable) with code `stalled`;
- no run of that attempt, or only finished ones: the recording is queued again (an app
  message, so it goes through the normal, deduplicated door), at most `MAX_REQUEUES`
  times; after that it is failed (retryable) with code `stalled`.
"""

import datetime as dt

from dagster import DagsterRunStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor

from ..domain.errors import ProcessingError
from ..domain.keys import parse_upload_key
from ..resources.queue import UploadQueue
from ..resources.records import RecordsTable
from ..resources.tracker import ProcessingTracker
from ..run_tags import recording_tag
from ..settings import load_settings
from .run_failures import retract_record
from .status import default_status

INTERVAL_S = 60
STALL_AFTER = dt.timedelta(seconds=load_settings().stall_after_s)
MAX_REQUEUES = 3
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


DEAD_RUN_AFTER = dt.timedelta(seconds=load_settings().dead_run_after_s)


def _running_since(record) -> float:
    """When a started run began (epoch seconds); +inf for a run still waiting in the queue,
    which is never taken for dead, however long the queue."""
    if record.dagster_run.status not in (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                                         DagsterRunStatus.CANCELING):
        return float("inf")
    return record.start_time or record.create_timestamp.timestamp()


def stop_dead_run(context: SensorEvaluationContext, record) -> None:
    """End a run taken for dead so that it cannot write anything after all. Its launcher
    is asked to terminate it: a process that is merely slow gets the interrupt and ends
    canceled (run monitoring ends a cancel that hangs). A process that is gone cannot
    answer: the run is reported failed. Either way the recording's last stage checks the
    status before it publishes, so even a run that survives writes no record for a
    recording already failed."""
    run_id = record.dagster_run.run_id
    try:
        terminated = context.instance.run_launcher.terminate(run_id)
    except Exception as exc:  # the launcher may not reach a worker that is gone
        context.log.warning(f"could not terminate run {run_id}: {type(exc).__name__}")
        terminated = False
    if not terminated:
        context.instance.report_run_failed(
            record.dagster_run, "no progress for too long: the run's worker is taken for dead")


def runs_in_flight(context: SensorEvaluationContext, recording_id: str, attempt: int) -> list:
    return list(context.instance.get_run_records(filters=RunsFilter(
        tags={recording_tag(recording_id): str(attempt)}, statuses=IN_FLIGHT), limit=5))


@sensor(minimum_interval_seconds=INTERVAL_S, default_status=default_status(load_settings(), "failures"),
        description="Recordings stuck in progress outside any run are queued again, then failed.")
def stranded_recordings_sensor(context: SensorEvaluationContext, tracker: ProcessingTracker,
                               queue: UploadQueue, records: RecordsTable) -> SkipReason:
    now = dt.datetime.now(dt.UTC)
    requeued = failed = 0
    for item in tracker.status.stalled(now - min(STALL_AFTER, DEAD_RUN_AFTER)):
        rid, attempt = item["recording_id"], int(item.get("attempt", 1))
        upload = parse_upload_key(str(item.get("upload_key", "")))
        in_flight = runs_in_flight(context, rid, attempt)
        if in_flight:
            dead = [r for r in in_flight if _running_since(r) < (now - DEAD_RUN_AFTER).timestamp()]
            if dead and len(dead) == len(in_flight) and str(item.get("updated_at", "")) < (
                    now - DEAD_RUN_AFTER).isoformat(timespec="milliseconds"):
                for record in dead:
                    stop_dead_run(context, record)
                if tracker.fail(rid, ProcessingError(
                        "stalled", "processing stopped making progress; retry it with `vomage retry`",
                        retryable=True), attempt):
                    retract_record(records, rid)
                    failed += 1
            continue
        if str(item.get("updated_at", "")) >= (now - STALL_AFTER).isoformat(timespec="milliseconds"):
            continue  # not stalled long enough to queue again
        if upload is None or int(item.get("requeues", 0)) >= MAX_REQUEUES:
            if tracker.fail(rid, ProcessingError(
                    "stalled", "processing did not start or finish; retry it with `vomage retry`",
                    retryable=True)):
                failed += 1
            continue
        if tracker.status.note_requeue(rid, attempt) is not None:
            queue.send({"recording_id": rid, "s3_key": upload.key, "user_id": upload.user_id,
                        "attempt": attempt, "metadata": {}})
            requeued += 1
    if requeued or failed:
        context.log.info(f"stranded recordings: {requeued} queued again, {failed} failed")
    return SkipReason(f"{requeued} queued again, {failed} failed")

"""Stranded-recordings sensor: nothing stays in progress forever.

Every `INTERVAL_S` it looks for recordings not final whose status has not changed for
`STALL_AFTER` (`VOMAGE_STALL_AFTER_S`, 10 min) and, per recording:

- a run of its current attempt is in flight: left alone (long, not stranded), unless the
  status has not moved for `DEAD_RUN_AFTER` (`VOMAGE_DEAD_RUN_AFTER_S`, 30 min). Then the
  run is taken for dead: it is terminated (or reported failed when its launcher cannot
  reach it) and the attempt is failed, retryable, with code `stalled`. This *dead-run
  rule* is for what the warm run launcher's own health check cannot see: that check
  pings the Celery worker, and a worker whose run is stuck (a call that never returns, a
  deadlocked thread) still answers, so the run would stay STARTED for ever.
- no run of that attempt in flight: the recording is queued again (an app message, so it
  goes through the ingest like any upload), at most `MAX_REQUEUES` times; then it is
  failed, retryable, with code `stalled`. An attempt still owned by a run that ended
  without ending it is released first (`supersede`), so the next run may own it.
"""

import datetime as dt

from dagster import DagsterRunStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from vomage_dagster.assets.runner import owner_runs_in_flight
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.sensors import DEFAULT_STATUS
from vomage_dagster.settings import load_settings

INTERVAL_S = 60
STALL_AFTER = dt.timedelta(seconds=load_settings().stall_after_s)
DEAD_RUN_AFTER = dt.timedelta(seconds=load_settings().dead_run_after_s)
MAX_REQUEUES = life.MAX_REQUEUES
IN_FLIGHT = list(NOT_FINISHED_STATUSES)
STALLED = "stalled"


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
    canceled. A process that is gone cannot answer: the run is reported failed. Either
    way the run's writes name it as the owner of an attempt that is now failed, so even
    a run that survives changes nothing and publishes no record."""
    run_id = record.dagster_run.run_id
    try:
        terminated = context.instance.run_launcher.terminate(run_id)
    except Exception as exc:  # the launcher may not reach a worker that is gone
        context.log.warning(f"could not terminate run {run_id}: {type(exc).__name__}")
        terminated = False
    if not terminated:
        context.instance.report_run_failed(
            record.dagster_run, "no progress for too long: the run's worker is taken for dead")


def runs_of_attempt(context: SensorEvaluationContext, recording_id: str, attempt: int,
                    statuses: list[DagsterRunStatus] | None = None) -> list:
    return list(context.instance.get_run_records(filters=RunsFilter(
        tags={recording_tag(recording_id): str(attempt)}, statuses=statuses), limit=20))


@sensor(minimum_interval_seconds=INTERVAL_S, default_status=DEFAULT_STATUS,
        description="Recordings stuck in progress outside any run are queued again, then failed.")
def stranded_recordings_sensor(context: SensorEvaluationContext, tracker: ProcessingTracker,
                               queue: UploadQueue) -> SkipReason:
    now = dt.datetime.now(dt.UTC)
    requeued = failed = 0
    for item in tracker.status.stalled(now - min(STALL_AFTER, DEAD_RUN_AFTER)):
        rid, attempt = item["recording_id"], int(item.get("attempt", 1))
        updated = str(item.get("updated_at", ""))
        in_flight = runs_of_attempt(context, rid, attempt, IN_FLIGHT)
        if not in_flight and item.get("owner"):  # a run started by hand carries no recording tags
            in_flight = owner_runs_in_flight(context.instance, str(item["owner"]))
        if in_flight:
            dead_before = now - DEAD_RUN_AFTER
            dead = [r for r in in_flight if _running_since(r) < dead_before.timestamp()]
            if dead and len(dead) == len(in_flight) and updated < life.timestamp(dead_before):
                for record in dead:
                    stop_dead_run(context, record)
                if tracker.fail(rid, ProcessingError(
                        STALLED, "processing stopped making progress; retry it with `vomage retry`",
                        retryable=True), attempt, language=item.get("language")):
                    tracker.retract(rid)
                    failed += 1
            continue
        if updated >= life.timestamp(now - STALL_AFTER):
            continue  # not stalled long enough to queue again
        upload = parse_upload_key(str(item.get("upload_key", "")))
        if upload is None or int(item.get("requeues", 0)) >= MAX_REQUEUES:
            if tracker.fail(rid, ProcessingError(
                    STALLED, "processing did not start or finish; retry it with `vomage retry`",
                    retryable=True), attempt, language=item.get("language")):
                failed += 1
            continue
        if tracker.requeue(rid, attempt, item.get("owner")) is not None:
            queue.send({"recording_id": rid, "s3_key": upload.key, "user_id": upload.user_id,
                        "attempt": attempt, "metadata": {}})
            requeued += 1
    if requeued or failed:
        context.log.info(f"stranded recordings: {requeued} queued again, {failed} failed")
    return SkipReason(f"{requeued} queued again, {failed} failed")

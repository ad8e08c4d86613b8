"""Schedules: the platform's clockwork. The safety nets run from the first deploy, on AWS
as locally: the daily tables, the metric export (its heartbeat keeps the alarms honest),
the model check and partition retention. Reprocessing and cache warming cost money or
only matter after an incident: an operator turns them on."""

import datetime as dt

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    schedule,
)

from vomage_dagster.domain import lifetimes
from vomage_dagster.jobs import (
    check_models,
    daily_tables,
    export_metrics,
    prune_recording_partitions,
    reprocess_day,
    warm_cache,
)
from vomage_dagster.operations.metrics import WINDOW, window_start

ON = DefaultScheduleStatus.RUNNING
OFF = DefaultScheduleStatus.STOPPED

daily_tables_schedule = build_schedule_from_partitioned_job(
    daily_tables, hour_of_day=0, minute_of_hour=30, default_status=ON,
    description="Yesterday's table and report, at 00:30 UTC.")


reprocess_yesterday = build_schedule_from_partitioned_job(
    reprocess_day, hour_of_day=2, minute_of_hour=0, default_status=OFF,
    description="Re-analyse yesterday with the configured version, at 02:00 UTC (off by default).")


@schedule(job=export_metrics, cron_schedule="*/5 * * * *", default_status=ON,
          description="Every five minutes: the window that just closed.")
def export_metrics_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    start = window_start(context.scheduled_execution_time.astimezone(dt.UTC)) - WINDOW
    return RunRequest(run_key=start.isoformat(), run_config={
        "ops": {"export_metrics_op": {"config": {"window_start": start.isoformat()}}}})


@schedule(job=check_models, cron_schedule="0 6 * * *", default_status=ON,
          description="Daily at 06:00 UTC: fail the model checks of mood and mood_image if a model is retiring.")
def check_models_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest()


@schedule(job=warm_cache, cron_schedule="0 * * * *", default_status=OFF,
          description="Hourly cache warming (turn on after a cache loss, or keep on).")
def warm_cache_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest()


@schedule(job=prune_recording_partitions, cron_schedule=lifetimes.RETENTION_CRON, default_status=ON,
          description="Partition retention (keeps `lifetimes.PARTITION_HOURS` hours, sized from the rate "
                      "and the 100,000 ceiling; hourly when that is under two days).")
def retention_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest()


SCHEDULES = [daily_tables_schedule, reprocess_yesterday, export_metrics_schedule, check_models_schedule,
             warm_cache_schedule, retention_schedule]

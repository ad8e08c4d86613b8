"""Jobs: named selections of assets and small operations jobs that sensors, schedules,
the UI and the CLI launch. The work itself lives in assets/ and operations/."""

import datetime as dt

from dagster import (
    AssetSelection,
    Config,
    OpExecutionContext,
    Out,
    define_asset_job,
    in_process_executor,
    job,
    op,
)

from vomage_dagster.assets import model_checks
from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import QUALITY_CHECKS
from vomage_dagster.domain import lifetimes
from vomage_dagster.operations import cache_warming, metrics, retention
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.runtime.execution import RUN_QUEUES, step_executor
from vomage_dagster.settings import load_settings

# Run tag the production instance's queue limits (deploy/dagster.yaml,
# tag_concurrency_limits) count, so a burst of uploads or a backfill cannot exceed the
# Transcribe and Bedrock quotas. Locally no limit reads it.
QUOTA_TAG = "vomage/aws-quota"
TRANSCRIBE_BEDROCK = "transcribe-bedrock"
BEDROCK_BATCH = "bedrock-batch"

# The run workers' queue a job's runs go to (run_launcher.py): one queue per IAM role,
# each served by workers running with that role (docs/deploy.md); locally one worker
# serves all three.
QUEUE_TAG = "dagster-celery/queue"
RECORDINGS_QUEUE, BATCH_QUEUE, METRICS_QUEUE = RUN_QUEUES

# In-process by default: a 6-asset chain costs ~1–2 s of orchestration this way against
# ~9–10 s with a subprocess per step (measured, docs/sources.md); the model calls are the
# slow part and already run in the model services. VOMAGE_EXECUTOR=celery sends the steps
# to dagster-celery workers (execution.py, `vomage cluster up`).
process_recording = define_asset_job(
    "process_recording",
    # The model lifecycle checks run daily in check_models, not once per recording; the
    # per-recording quality checks run with each recording.
    selection=AssetSelection.groups("recording").without_checks() | AssetSelection.checks(*QUALITY_CHECKS),
    executor_def=step_executor(load_settings()),
    tags={QUOTA_TAG: TRANSCRIBE_BEDROCK, QUEUE_TAG: RECORDINGS_QUEUE},
    description="Decode, transcribe, add context, analyse the mood, paint, publish: one recording.",
)

daily_tables = define_asset_job(
    "daily_tables",
    selection=AssetSelection.assets("voice_records_daily", "mood_daily_report"),
    executor_def=in_process_executor,
    tags={QUEUE_TAG: BATCH_QUEUE},
    description="The day's Parquet table of records and its mood report.",
)


reprocess_day = define_asset_job(
    "reprocess_day",
    selection=AssetSelection.assets("mood_reprocessed"),
    executor_def=in_process_executor,
    tags={QUOTA_TAG: BEDROCK_BATCH, QUEUE_TAG: BATCH_QUEUE},
    description="Re-analyse a day's transcripts with a named prompt/model version (Bedrock batch).",
)


check_models = define_asset_job(
    "check_models",
    selection=AssetSelection.checks(*model_checks.CHECKS),
    executor_def=in_process_executor,
    tags={QUEUE_TAG: RECORDINGS_QUEUE},
    description="Is every Bedrock model the recordings call still ACTIVE? (asset checks on mood, mood_image)",
)


class WarmConfig(Config):
    days_back: int = 1  # today and this many days before


# Operations report through metadata; their return values are summaries nobody loads,
# kept in memory rather than in the per-recording S3 store.
OPS_OUT = Out(io_manager_key="ops_io_manager")


@op(out=OPS_OUT, description="Rebuild transcribe:/analysis:/image:/context: keys from durable outputs.")
def warm_cache_op(context: OpExecutionContext, config: WarmConfig, records: RecordsTable,
                  store: ObjectStore, cache: Cache) -> dict:
    wanted = cache_warming.recent_days(config.days_back)
    warmed = cache_warming.warm(records, store, cache, wanted)
    context.add_output_metadata({k: int(v) for k, v in warmed.items()} | {"days": ", ".join(wanted)})
    context.log.info(f"cache warmed: {dict(warmed)}")
    return dict(warmed)


@job(executor_def=in_process_executor, tags={QUEUE_TAG: BATCH_QUEUE},
     description="Warm the Redis cache after a cache loss.")
def warm_cache():
    warm_cache_op()


class MetricsConfig(Config):
    window_start: str = ""  # ISO time; empty: the last complete five-minute window


@op(out=OPS_OUT, description="Export one five-minute window of metrics to CloudWatch (once per window).")
def export_metrics_op(context: OpExecutionContext, config: MetricsConfig, records: RecordsTable,
                      tracker: ProcessingTracker, queue: UploadQueue, store: ObjectStore) -> dict:
    start = dt.datetime.fromisoformat(config.window_start) if config.window_start else None
    result = metrics.export_window(records, tracker.status, queue, store, start,
                                   put_alarms=load_settings().is_local)
    context.log.info(f"metrics: {result}")
    return result


@job(executor_def=in_process_executor, tags={QUEUE_TAG: METRICS_QUEUE}, description="CloudWatch metric export.")
def export_metrics():
    export_metrics_op()


class RetentionConfig(Config):
    # Days (fractions allowed): the window derived from the rate and the 100,000 ceiling.
    keep_days: float = lifetimes.PARTITION_HOURS / 24


@op(out=OPS_OUT, description="Remove recording partitions older than keep_days that are in a daily table.")
def prune_partitions_op(context: OpExecutionContext, config: RetentionConfig, tracker: ProcessingTracker,
                        records: RecordsTable, store: ObjectStore) -> int:
    keys = list(context.instance.get_dynamic_partitions(recordings.name))
    doomed = retention.prunable(keys, tracker.status, records, store, config.keep_days)
    for key in doomed:
        context.instance.delete_dynamic_partition(recordings.name, key)
    context.add_output_metadata({"partitions_before": len(keys), "removed": len(doomed)})
    return len(doomed)


@job(executor_def=in_process_executor, tags={QUEUE_TAG: BATCH_QUEUE},
     description="Keep the recordings partition count bounded.")
def prune_recording_partitions():
    prune_partitions_op()


JOBS = [process_recording, daily_tables, reprocess_day, check_models, warm_cache, export_metrics,
        prune_recording_partitions]

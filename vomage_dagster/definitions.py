"""vomage-dagster: everything Dagster loads, as a table of contents.

- assets/recording.py   the per-recording assets (raw_recording … published_record), one step
- assets/stages.py      what each of them does for one recording (plain functions)
- assets/batching.py    running them for a recording or a batch; failed means failed in the catalog
- sensors/sqs_uploads.py what runs when S3 (or the app) announces a recording on SQS
- sensors/s3_uploads.py the same by listing the bucket (VOMAGE_INGEST chooses)
- sensors/run_failures.py a failed or canceled run marks its recordings failed
- sensors/stranded.py   a recording stuck in progress outside any run is queued again
- assets/daily.py       the daily Parquet table and mood report
- assets/model_checks.py  is every Bedrock model still ACTIVE (checks on mood, mood_image)
- assets/reprocessing.py  batch re-analysis of a day (Bedrock batch) + sensors/batch_jobs.py
- jobs.py               process_recording, daily_tables, check_models, warm_cache, export_metrics, retention
- schedules.py          when the daily, metric, cache and retention jobs run
- operations/           cache warming, metric export, retention (plain functions)
- resources/            one module per external system; built here from settings.py
"""

import os
import warnings
from pathlib import Path

from dagster import (
    AnchorBasedFilePathMapping,
    BetaWarning,
    Definitions,
    EnvVar,
    link_code_references_to_git,
    map_asset_specs,
    mem_io_manager,
    with_source_code_references,
)

from .assets import daily, model_checks, recording, reprocessing
from .jobs import JOBS
from .resources.analyzer import MoodAnalyzer
from .resources.batch import BatchInference
from .resources.cache import Cache
from .resources.events import EventPublisher
from .resources.io_manager import S3JsonIOManager
from .resources.model_catalog import ModelCatalog
from .resources.painter import ImagePainter
from .resources.queue import UploadQueue
from .resources.records import RecordsTable
from .resources.speech import SpeechToText
from .resources.status import StatusTable
from .resources.store import ObjectStore
from .resources.tracker import ProcessingTracker
from .resources.weather import WeatherSource
from .schedules import SCHEDULES
from .sensors.batch_jobs import batch_job_sensor
from .sensors.run_failures import recording_canceled_sensor, recording_failure_sensor
from .sensors.s3_uploads import s3_upload_sensor
from .sensors.sqs_uploads import sqs_upload_sensor
from .sensors.stranded import stranded_recordings_sensor
from .settings import Settings, load_settings


def build_resources(settings: Settings) -> dict:
    """Every resource, configured for `settings.env` (endpoints come from the environment)."""
    region = settings.region
    store = ObjectStore(bucket=settings.bucket, region_name=region)
    cache = Cache(redis_url=settings.redis_url, ca_file=settings.redis_ca_file or None,
                  password=EnvVar("REDIS_PASSWORD") if settings.redis_password else None)
    events = EventPublisher(event_bus=settings.event_bus, region_name=region)
    status = StatusTable(table_name=settings.status_table, region_name=region)
    return {
        "io_manager": S3JsonIOManager(store=store),
        "ops_io_manager": mem_io_manager,
        "store": store,
        "cache": cache,
        "events": events,
        "tracker": ProcessingTracker(status=status, cache=cache, events=events),
        "queue": UploadQueue(queue_name=settings.uploads_queue,
                             dead_letter_queue_name=settings.dead_letter_queue, region_name=region,
                             wait_s=settings.sqs_wait_seconds),
        "records": RecordsTable(table_name=settings.records_table, region_name=region),
        "speech": SpeechToText(store=store, region_name=region,
                               poll_seconds=settings.transcribe_poll_seconds,
                               timeout_seconds=settings.transcribe_timeout_seconds),
        "analyzer": MoodAnalyzer(model_id=settings.analysis_model_id, region_name=settings.analysis_region),
        "painter": ImagePainter(model_id=settings.image_model_id, region_name=settings.image_region),
        "model_catalog": ModelCatalog(),
        "weather": WeatherSource(),
        "batch_inference": BatchInference(region_name=settings.analysis_region),
    }


OWNERS = ["team:vomage-platform"]


def presented(assets: list) -> list:
    """The assets as the UI shows them: owned by the team, with links to their code.

    The code links point at this checkout; with `VOMAGE_GIT_URL` (the repository's web URL)
    and `VOMAGE_GIT_BRANCH` (a branch or commit, default `main`) set, as the deployment's
    image does, they open the source on GitHub or GitLab instead.
    """
    owned = map_asset_specs(lambda spec: spec.replace_attributes(owners=OWNERS), assets)
    with warnings.catch_warnings():  # code references are beta in 1.13: said here, once
        warnings.simplefilter("ignore", BetaWarning)
        linked = with_source_code_references(owned)
        git_url = os.environ.get("VOMAGE_GIT_URL", "").strip()
        if not git_url:
            return list(linked)
        return list(link_code_references_to_git(
            linked, git_url=git_url, git_branch=os.environ.get("VOMAGE_GIT_BRANCH", "main"),
            file_path_mapping=AnchorBasedFilePathMapping(
                local_file_anchor=Path(__file__), file_anchor_path_in_repository="vomage_dagster/definitions.py")))


defs = Definitions(
    assets=presented(recording.ASSETS + daily.ASSETS + reprocessing.ASSETS),
    asset_checks=model_checks.CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[sqs_upload_sensor, s3_upload_sensor, recording_failure_sensor, recording_canceled_sensor,
             stranded_recordings_sensor, batch_job_sensor],
    resources=build_resources(load_settings()),
)

"""The one factory of resources: the code location, the CLI, the live view and the ingest
service all build them here, from the settings, so they cannot drift apart."""

from __future__ import annotations

from dagster import EnvVar, mem_io_manager

from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.events import EventPublisher
from vomage_dagster.resources.io_manager import S3JsonIOManager
from vomage_dagster.resources.model_catalog import ModelCatalog
from vomage_dagster.resources.painter import ImagePainter
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.speech import SpeechToText
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.resources.weather import WeatherSource
from vomage_dagster.settings import Settings


def build_resources(settings: Settings) -> dict:
    """Every resource, configured for `settings.env` (endpoints come from the environment)."""
    region = settings.region
    store = ObjectStore(bucket=settings.bucket, region_name=region)
    cache = Cache(redis_url=settings.redis_url, ca_file=settings.redis_ca_file or None,
                  password=EnvVar("REDIS_PASSWORD") if settings.redis_password else None)
    events = EventPublisher(event_bus=settings.event_bus, region_name=region)
    status = StatusTable(table_name=settings.status_table, region_name=region)
    records = RecordsTable(table_name=settings.records_table, region_name=region)
    return {
        "io_manager": S3JsonIOManager(store=store),
        "ops_io_manager": mem_io_manager,
        "store": store,
        "cache": cache,
        "events": events,
        "tracker": ProcessingTracker(status=status, cache=cache, events=events, records=records,
                                     auto_retries=settings.auto_retries, retry_backoff_s=settings.retry_backoff_s,
                                     retry_queue=settings.uploads_queue),
        "queue": UploadQueue(queue_name=settings.uploads_queue,
                             dead_letter_queue_name=settings.dead_letter_queue, region_name=region,
                             wait_s=settings.sqs_wait_seconds),
        "records": records,
        "speech": SpeechToText(store=store, region_name=region,
                               poll_seconds=settings.transcribe_poll_seconds,
                               timeout_seconds=settings.transcribe_timeout_seconds,
                               vocabulary_prefix=settings.vocabulary_prefix),
        "analyzer": MoodAnalyzer(model_id=settings.analysis_model_id, region_name=settings.analysis_region),
        "painter": ImagePainter(model_id=settings.image_model_id, region_name=settings.image_region),
        "model_catalog": ModelCatalog(),
        "weather": WeatherSource(provider=settings.weather_provider, url=settings.weather_url,
                                 timeout_s=settings.weather_timeout_s),
        "batch_inference": BatchInference(role_arn=settings.bedrock_batch_role_arn,
                                          region_name=settings.analysis_region),
    }

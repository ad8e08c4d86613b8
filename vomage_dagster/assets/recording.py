"""The per-recording assets: six assets in the catalog, one Dagster step per run.

    raw_recording ─┬── transcript ─────────┬── mood ── mood_image ── published_record
                   └── recording_context ──┘

Each asset is a stage of `stages` (what it does for one recording is said there). They
are one `multi_asset` so that a run costs one step's bookkeeping, not six: every step
writes its start, inputs, outputs and success as events, and on two cores those events,
not the work, were most of Dagster's share of a recording. The catalog still shows six
assets, each partition materialized when its stage produced it; a subset (one asset, from
the UI) runs alone, its inputs read from S3.

A run covers one recording or a batch (`runner`), and first owns each recording's attempt.
A recording that fails leaves its remaining assets unmaterialized and the run failed, so
the catalog shows those partitions failed, as the status table does; the other
recordings of the batch go on.
"""

import warnings
from collections.abc import Iterator

from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, AssetSpec, PreviewWarning, multi_asset

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.runner import BATCH_POLICY, owner_live, run_recordings
from vomage_dagster.assets.stages import INPUTS, STAGES, StageResources
from vomage_dagster.domain import quality
from vomage_dagster.domain.run_tags import recordings_of_run, traces_of_run
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.events import EventPublisher
from vomage_dagster.resources.painter import ImagePainter
from vomage_dagster.resources.speech import SpeechToText
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.resources.weather import WeatherSource

GROUP = "recording"
ORDER = list(STAGES)
KEYS = [AssetKey(name) for name in ORDER]

_ABOUT = {  # asset → (kinds, description)
    "raw_recording": ({"s3", "python"}, "The uploaded recording, decoded and validated (1–300 s, not silent)."),
    "transcript": ({"python"}, "What was said: Transcribe (IdentifyLanguage zh-CN/en-US/ja-JP), cached by audio hash."),
    "recording_context": ({"python"}, "When and where: time of day, season, weekday, place cell and weather."),
    "mood": ({"bedrock"}, "The mood: emotion, intensity, valence, arousal, keywords, summary, image prompt."),
    "mood_image": ({"bedrock", "s3"},
                   "A 1024×1024 PNG matching the mood (Stable Image Core by default), plus a 256 px thumbnail."),
    "published_record": ({"dynamodb"}, "The app's VoiceRecords row; status complete; a Processing Complete event."),
}

# Per-partition asset checks are a preview in Dagster 1.13 (said once here).
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec", category=PreviewWarning)
CHECK_SPECS = [AssetCheckSpec(check_name, asset=asset, description=about, partitions_def=recordings)
               for asset, (check_name, about) in quality.CHECKS.items()]
QUALITY_CHECKS = [spec.key for spec in CHECK_SPECS]

SPECS = [AssetSpec(name, deps=INPUTS[name], group_name=GROUP, kinds=_ABOUT[name][0],
                   description=_ABOUT[name][1], skippable=True) for name in ORDER]


@multi_asset(specs=SPECS, check_specs=CHECK_SPECS, partitions_def=recordings, can_subset=True,
             backfill_policy=BATCH_POLICY,
             name="recording_chain",
             description="The six stages of a recording (or a batch of them) in one step.")
def recording_chain(context: AssetExecutionContext, store: ObjectStore, tracker: ProcessingTracker,
                    cache: Cache, speech: SpeechToText, weather: WeatherSource, analyzer: MoodAnalyzer,
                    painter: ImagePainter, events: EventPublisher) -> Iterator:
    res = StageResources(store=store, tracker=tracker, cache=cache, speech=speech, weather=weather,
                         analyzer=analyzer, painter=painter, events=events)
    wanted = [name for name, key in zip(ORDER, KEYS, strict=True) if key in context.selected_asset_keys]
    # Dagster's retries of a run share its root run id: a retry still owns what the run owned.
    owner = context.run.root_run_id or context.run.run_id
    checks = {key.asset_key.path[-1] for key in context.selected_asset_check_keys}
    record = context.instance.get_run_record_by_id(context.run.run_id)
    yield from run_recordings(res, list(context.partition_keys), recordings_of_run(context.run.tags), owner,
                              lambda other: owner_live(context.instance, other), wanted, checks, context.log,
                              traces=traces_of_run(context.run.tags),
                              queued_at=record.create_timestamp if record else None, run_id=context.run.run_id)


ASSETS = [recording_chain]

"""S3 sensor: new keys under `uploads/` → one partition and one run per recording.

A tick is bounded (at most `MAX_KEYS_PER_TICK` recordings, `LIST_BUDGET_S` seconds of
listing). `run_key` = recording id, so a recording is never run twice by this sensor,
and recordings whose status is already final are skipped — which also decides what a
first tick with an empty cursor does: it picks up every upload not yet processed.
Listing a whole prefix is fine for development and modest volume; production volume
belongs to the SQS sensor.
"""


import time

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..assets.recording import UPLOAD_KEY_TAG
from ..domain.keys import UPLOADS_PREFIX, parse_upload_key
from ..domain.upload_cursor import UploadCursor, select_new
from ..jobs import process_recording
from ..partitions import recordings
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker, is_terminal
from ..settings import load_settings

MAX_KEYS_PER_TICK = 100
LIST_BUDGET_S = 20.0


def _default_status() -> DefaultSensorStatus:
    local = load_settings().is_local
    return DefaultSensorStatus.RUNNING if local else DefaultSensorStatus.STOPPED


@sensor(job=process_recording, minimum_interval_seconds=5, default_status=_default_status(),
        description="New uploads in S3 → a partition and a run per recording.")
def s3_upload_sensor(context: SensorEvaluationContext, store: ObjectStore,
                     tracker: ProcessingTracker) -> SensorResult | SkipReason:
    cursor = UploadCursor.from_json(context.cursor)
    deadline = time.monotonic() + LIST_BUDGET_S
    listed, complete = [], True
    for obj in store.list(UPLOADS_PREFIX):
        listed.append((obj.key, obj.last_modified))
        if time.monotonic() > deadline:
            complete = False
            break
    taken, next_cursor = select_new(listed, cursor, MAX_KEYS_PER_TICK)
    if not complete:
        # S3 lists in key order: an unfinished listing may have skipped older keys, so
        # request what was found but keep the cursor where it was.
        next_cursor = cursor
    uploads = []
    for key, _lm in taken:
        parsed = parse_upload_key(key)
        if parsed is None:
            context.log.warning("ignoring an object that is not uploads/<user>/<id>.<ext>")
            continue
        uploads.append(parsed)
    statuses = tracker.status.get_many([u.recording_id for u in uploads]) if uploads else {}
    fresh = [u for u in uploads if not is_terminal(statuses.get(u.recording_id))]
    for u in fresh:
        tracker.register(u.recording_id, u.key)
    if not fresh:
        return SensorResult(skip_reason=SkipReason("no new uploads"), cursor=next_cursor.to_json())
    ids = list(dict.fromkeys(u.recording_id for u in fresh))
    return SensorResult(
        run_requests=[
            RunRequest(run_key=u.recording_id, partition_key=u.recording_id,
                       tags={UPLOAD_KEY_TAG: u.key})
            for u in fresh
        ],
        dynamic_partitions_requests=[recordings.build_add_request(ids)],
        cursor=next_cursor.to_json(),
    )

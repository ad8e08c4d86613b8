"""The upload sweep: an upload nothing registered is sent to the ingest, never run from here.

S3 notifications are delivered "typically in seconds", with no bound, and a bucket may
have none at all. Each tick lists `uploads/` from where the last stopped
(`domain/upload_cursor.py`); an upload older than `GRACE` whose recording has no status
item, or whose id is registered to another upload, gets an app message on the uploads
queue, as `vomage retry` and the stranded-recordings sensor send. The ingest then handles
it like any other (registers it, or refuses the other upload with its reason). A newer
upload is looked at again next tick: its notification is probably on its way.

A tick is bounded (`MAX_KEYS_PER_TICK` uploads, `LIST_BUDGET_S` of listing); a large
prefix is listed over several ticks.
"""

import datetime as dt
import time

from dagster import SensorEvaluationContext, SensorResult, SkipReason, sensor

from vomage_dagster.domain.keys import UPLOADS_PREFIX, parse_upload_key
from vomage_dagster.domain.upload_cursor import UploadCursor, take_new
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.sensors import DEFAULT_STATUS

MAX_KEYS_PER_TICK = 100
LIST_BUDGET_S = 20.0
GRACE = dt.timedelta(seconds=60)
INTERVAL_S = 30


@sensor(minimum_interval_seconds=INTERVAL_S, default_status=DEFAULT_STATUS,
        description="Uploads nothing registered (a lost or late S3 notification) → a message to the ingest.")
def upload_sweep_sensor(context: SensorEvaluationContext, store: ObjectStore, tracker: ProcessingTracker,
                        queue: UploadQueue) -> SensorResult:
    cursor = UploadCursor.from_json(context.cursor)
    deadline = time.monotonic() + LIST_BUDGET_S
    listing = ((o.key, o.last_modified) for o in store.list(UPLOADS_PREFIX, start_after=cursor.position))
    taken, position = take_new(listing, cursor, MAX_KEYS_PER_TICK, lambda: time.monotonic() > deadline)
    recent = dt.datetime.now(dt.UTC) - GRACE
    uploads = {key: parse_upload_key(key) for key, last_modified in taken if last_modified <= recent}
    items = tracker.status.get_many([u.recording_id for u in uploads.values() if u is not None])
    unregistered = [u for u in uploads.values() if u is not None
                    and (items.get(u.recording_id) or {}).get("upload_key") != u.key]
    queue.send_many([{"recording_id": u.recording_id, "s3_key": u.key, "user_id": u.user_id,
                      "metadata": {}} for u in unregistered])
    foreign = sum(1 for u in uploads.values() if u is None)
    if foreign:
        context.log.warning(f"ignoring {foreign} object(s) that are not uploads/<user>/<id>.<ext>")
    # Uploads too new to judge are looked at again in a later pass.
    next_cursor = cursor.advance([t for t in taken if t[0] in uploads], position)
    return SensorResult(skip_reason=SkipReason(
        f"{len(taken)} new upload(s), {len(unregistered)} sent to the ingest"), cursor=next_cursor.to_json())

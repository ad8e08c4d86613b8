"""S3 sensor: new keys under `uploads/` → one partition and one run per recording.

A tick is bounded (at most `MAX_KEYS_PER_TICK` recordings, `LIST_BUDGET_S` seconds of
listing); a large prefix is listed over several ticks, each going on from where the last
stopped (`domain/upload_cursor.py`). Recordings whose status is final are skipped — which
also decides what a first tick with an empty cursor does: it picks up every upload not
yet processed. Listing a
whole prefix suits development, modest volume, and a safety-net sweep next to the SQS
sensor; production volume belongs to the SQS sensor.
"""

import time

from dagster import (
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..domain.hashing import sha256_text
from ..domain.keys import UPLOADS_PREFIX, parse_upload_key
from ..domain.upload_cursor import UploadCursor, take_new
from ..jobs import process_recording
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .planning import CLAIMED, plan_runs
from .sqs_uploads import INGEST_ERRORS_PREFIX
from .status import EVERY_DAEMON_LOOP_S, default_status

MAX_KEYS_PER_TICK = 100
LIST_BUDGET_S = 20.0


@sensor(job=process_recording, minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
        default_status=default_status(load_settings(), "s3"),
        description="New uploads in S3 → a partition and a run per recording.")
def s3_upload_sensor(context: SensorEvaluationContext, store: ObjectStore,
                     tracker: ProcessingTracker) -> SensorResult:
    cursor = UploadCursor.from_json(context.cursor)
    deadline = time.monotonic() + LIST_BUDGET_S
    # Key order, from where the last tick stopped: a prefix too large for one tick is
    # listed over several, each taking the new uploads of its stretch.
    listing = ((o.key, o.last_modified) for o in store.list(UPLOADS_PREFIX, start_after=cursor.position))
    taken, position = take_new(listing, cursor, MAX_KEYS_PER_TICK, lambda: time.monotonic() > deadline)
    uploads = []
    for key, _lm in taken:
        parsed = parse_upload_key(key)
        if parsed is None:
            context.log.warning("ignoring an object that is not uploads/<user>/<id>.<ext>")
        else:
            uploads.append(parsed)
    plan = plan_runs(context.instance, tracker, uploads, load_settings().max_batch)
    for key, reason in plan.refused.items():
        store.put_json(f"{INGEST_ERRORS_PREFIX}s3-{sha256_text(key)[:32]}.json",
                       {"upload_key": key, "reason": reason, "seen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())})
        context.log.warning(f"refused an upload: {reason}")
    # A recording another claimant holds is looked at again in the next pass, not marked
    # seen: if that claimant died (a failed tick), the claim goes stale and this sensor
    # takes it over.
    held = {u.key for u in uploads if plan.decisions.get(u.recording_id) == CLAIMED}
    next_cursor = cursor.advance([t for t in taken if t[0] not in held], position)
    if not plan.run_requests:
        return SensorResult(skip_reason=SkipReason("no new uploads"), cursor=next_cursor.to_json())
    return SensorResult(run_requests=plan.run_requests,
                        dynamic_partitions_requests=plan.partition_requests(),
                        cursor=next_cursor.to_json())

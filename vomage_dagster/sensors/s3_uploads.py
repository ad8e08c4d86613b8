"""S3 sensor: new keys under `uploads/` → one partition and one run per recording.

A tick is bounded (at most `MAX_KEYS_PER_TICK` recordings, `LIST_BUDGET_S` seconds of
listing). Recordings whose status is final are skipped — which also decides what a first
tick with an empty cursor does: it picks up every upload not yet processed. Listing a
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
from ..domain.upload_cursor import UploadCursor, select_new
from ..jobs import process_recording
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .planning import plan_runs
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
    listed, complete = [], True
    for obj in store.list(UPLOADS_PREFIX):
        listed.append((obj.key, obj.last_modified))
        if time.monotonic() > deadline:
            complete = False
            break
    taken, _ = select_new(listed, cursor, MAX_KEYS_PER_TICK)
    uploads = []
    for key, _lm in taken:
        parsed = parse_upload_key(key)
        if parsed is None:
            context.log.warning("ignoring an object that is not uploads/<user>/<id>.<ext>")
        else:
            uploads.append(parsed)
    # A key claimed by another sensor is that sensor's to launch (the SQS sensor follows
    # up on its own claims); a claim this sensor made in a tick that failed was never
    # stored in the cursor either, so the key comes back.
    plan = plan_runs(context.instance, tracker, uploads, load_settings().max_batch)
    for key, reason in plan.refused.items():
        store.put_json(f"{INGEST_ERRORS_PREFIX}s3-{sha256_text(key)[:32]}.json",
                       {"upload_key": key, "reason": reason, "seen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())})
        context.log.warning(f"refused an upload: {reason}")
    # S3 lists in key order: an unfinished listing may have skipped older keys, so the
    # cursor only moves after a complete one.
    next_cursor = cursor.advance(taken) if complete else cursor
    if not plan.run_requests:
        return SensorResult(skip_reason=SkipReason("no new uploads"), cursor=next_cursor.to_json())
    return SensorResult(run_requests=plan.run_requests,
                        dynamic_partitions_requests=plan.partition_requests(),
                        cursor=next_cursor.to_json())

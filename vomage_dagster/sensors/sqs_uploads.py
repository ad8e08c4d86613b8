"""SQS sensor: upload notifications and app messages → every recording in exactly one run.

SQS delivers at least once, out of order, sometimes malformed. A tick waits up to the
queue's `wait_s` for a first message (long poll, so an upload is picked up as it lands,
not at the next tick), then takes at most `MAX_MESSAGES` within `BUDGET_S` seconds, in
receives of 10; recordings claimed together run as batches (`planning`). Per message:

- an S3 test event is deleted;
- a poison message (bad JSON, unknown bucket, key outside uploads/, schema error) is
  not deleted: its reason is written to `ingest-errors/<md5 of body>.json` and it comes
  back after a few seconds, until SQS moves it to the dead-letter queue after
  maxReceiveCount=3 receives (`vomage dlq list | redrive`);
- a message whose recordings are all running or final is deleted;
- a message whose recording run was requested in this tick (or is claimed by the other
  sensor) is replaced: a follow-up message for the same recording is sent with a short
  delay, then the original is deleted. The follow-up is deleted once the run exists.
  Replacing rather than re-receiving keeps valid messages out of the dead-letter queue.
"""

import datetime as dt
import time

from dagster import SensorEvaluationContext, SensorResult, SkipReason, sensor

from ..domain.errors import ProcessingError
from ..domain.messages import PoisonMessage, parse_message
from ..jobs import process_recording
from ..resources.queue import Message, UploadQueue
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .planning import FINAL, RUNNING, plan_runs
from .status import EVERY_DAEMON_LOOP_S, default_status

MAX_MESSAGES = 100
BUDGET_S = 20.0
FOLLOW_UP_DELAY_S = 5
MAX_FOLLOW_UPS = 60  # ~5 minutes for a run to appear before the recording is failed
INGEST_ERRORS_PREFIX = "ingest-errors/"


def _receive(queue: UploadQueue) -> list[Message]:
    """Wait up to `queue.wait_s` for the first message, then take what is there."""
    deadline = time.monotonic() + BUDGET_S
    received: list[Message] = []
    while len(received) < MAX_MESSAGES and time.monotonic() < deadline:
        batch = queue.receive(min(10, MAX_MESSAGES - len(received)),
                              wait_s=0 if received else queue.wait_s)
        if not batch:
            break
        received += batch
    return received


@sensor(job=process_recording, minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
        default_status=default_status(load_settings(), "sqs"),
        description="S3 notifications and app messages on the uploads queue → one run per recording.")
def sqs_upload_sensor(context: SensorEvaluationContext, queue: UploadQueue, store: ObjectStore,
                      tracker: ProcessingTracker) -> SensorResult:
    messages = _receive(queue)
    to_delete: list[Message] = []
    poison: list[Message] = []
    parsed: dict[str, list] = {}
    follow_ups: dict[str, int] = {}
    for m in messages:
        try:
            arrivals = parse_message(m.body, store.bucket)
        except PoisonMessage as exc:
            poison.append(m)
            store.put_json(f"{INGEST_ERRORS_PREFIX}{m.md5}.json", {
                "message_id": m.message_id, "reason": str(exc), "body": m.body[:4000],
                "receive_count": m.receive_count,
                "seen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
            context.log.warning(f"poison message {m.message_id}: {exc}")
            continue
        if not arrivals:  # s3:TestEvent
            to_delete.append(m)
            continue
        parsed[m.message_id] = arrivals
        follow_ups[m.message_id] = max(a.metadata.get("follow_up", 0) for a in arrivals)

    uploads = [a.upload for arrivals in parsed.values() for a in arrivals]
    plan = plan_runs(context.instance, tracker, uploads)
    followed: set[str] = set()
    for m in messages:
        arrivals = parsed.get(m.message_id)
        if not arrivals:
            continue
        pending = [a for a in arrivals if plan.decisions[a.recording_id] not in (RUNNING, FINAL)
                   and a.recording_id not in followed]
        for a in pending:
            followed.add(a.recording_id)
            n = follow_ups[m.message_id] + 1
            if n > MAX_FOLLOW_UPS:
                tracker.fail(a.recording_id, ProcessingError(
                    "ingest_timeout", "no run started for this recording", retryable=True))
                continue
            queue.send({"recording_id": a.recording_id, "s3_key": a.upload.key,
                        "user_id": a.upload.user_id, "metadata": {"follow_up": n}},
                       delay_s=FOLLOW_UP_DELAY_S)
        to_delete.append(m)
    queue.delete(to_delete)
    queue.release(poison)
    if not plan.run_requests:
        return SensorResult(skip_reason=SkipReason(
            f"{len(messages)} message(s), {len(poison)} poison, no new recording"))
    return SensorResult(run_requests=plan.run_requests,
                        dynamic_partitions_requests=plan.partition_requests())

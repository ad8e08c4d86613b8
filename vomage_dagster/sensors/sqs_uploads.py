"""SQS sensor: upload notifications and app messages → every recording in exactly one run.

SQS delivers at least once, out of order, sometimes malformed. A tick waits up to the
queue's `wait_s` for a first message (long poll, so an upload is picked up as it lands,
not at the next tick), then takes at most `MAX_MESSAGES` within `BUDGET_S` seconds, in
receives of 10; recordings claimed together run as batches (`planning`). Per message:

- an S3 test event is deleted;
- a poison message (bad JSON, unknown bucket, key outside uploads/, schema error, any
  shape the parser refuses; the parser never raises anything else) is not deleted: its
  reason is written to `ingest-errors/<md5 of body>.json` and it comes back after a few
  seconds, until SQS moves it to the dead-letter queue after
  maxReceiveCount=3 receives (`vomage dlq list | redrive`);
- a message whose recordings are all running or final is deleted;
- a message whose recording run was requested in this tick (or is claimed by the other
  sensor) is replaced: a follow-up message for the same recording is sent with a short
  delay, then the original is deleted. The follow-up is deleted once the run exists.
  Replacing rather than re-receiving keeps valid messages out of the dead-letter queue.
"""

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from dagster import DagsterInstance, SensorEvaluationContext, SensorResult, SkipReason, sensor

from ..domain.errors import ProcessingError
from ..domain.messages import PoisonMessage, parse_message
from ..jobs import process_recording
from ..resources.queue import Message, UploadQueue
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker
from ..settings import load_settings
from .planning import FINAL, RUNNING, Plan, plan_runs
from .status import EVERY_DAEMON_LOOP_S, default_status

MAX_MESSAGES = 100
BUDGET_S = 20.0
FOLLOW_UP_DELAY_S = 5
MAX_FOLLOW_UPS = 60  # ~5 minutes for a run to appear before the recording is failed
INGEST_ERRORS_PREFIX = "ingest-errors/"


def refuse(store: ObjectStore, message: Message, reason: str, upload_key: str | None = None) -> None:
    """Keep why a message (or an upload it names, `upload_key`) was refused, for
    `vomage dlq list` and for erasure (S3 events carry keys URL-encoded)."""
    store.put_json(f"{INGEST_ERRORS_PREFIX}{message.md5}.json", {
        "message_id": message.message_id, "reason": reason, "body": message.body[:4000],
        **({"upload_key": upload_key} if upload_key else {}),
        "receive_count": message.receive_count,
        "seen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})


def _is_follow_up(message: Message) -> bool:
    """A message this sensor sent itself (metadata `follow_up`, see below)."""
    return '"follow_up"' in message.body


def receive(queue: UploadQueue) -> list[Message]:
    """Wait up to `queue.wait_s` for a message that is news (an upload notification or an
    app message, not one of this sensor's follow-ups), then take what is there."""
    started = time.monotonic()
    received: list[Message] = []
    news = False
    while len(received) < MAX_MESSAGES and time.monotonic() - started < BUDGET_S:
        waited = time.monotonic() - started
        wait_s = 0 if news else int(queue.wait_s - waited)
        batch = queue.receive(min(10, MAX_MESSAGES - len(received)), wait_s=max(wait_s, 0))
        if not batch and (news or wait_s <= 0):
            break
        received += batch
        news = news or any(not _is_follow_up(m) for m in batch)
    return received


@dataclass
class Triage:
    """What one receive of messages comes to: the plan of runs, and per message what it
    asked for."""
    plan: Plan
    arrivals: dict[str, list] = field(default_factory=dict)  # message id → its arrivals
    follow_ups: dict[str, int] = field(default_factory=dict)  # message id → times replaced
    to_delete: list[Message] = field(default_factory=list)
    poison: list[Message] = field(default_factory=list)


def triage(messages: list[Message], instance: DagsterInstance, store: ObjectStore,
           tracker: ProcessingTracker, log: logging.Logger, max_batch: int) -> Triage:
    """Parse every message (a poison one is kept aside, never raised), claim its
    recordings and plan their runs (`planning.plan_runs`)."""
    arrivals: dict[str, list] = {}
    follow_ups: dict[str, int] = {}
    to_delete: list[Message] = []
    poison: list[Message] = []
    for m in messages:
        try:
            parsed = parse_message(m.body, store.bucket)
        except Exception as exc:  # PoisonMessage, or anything the parser did not foresee
            if not isinstance(exc, PoisonMessage):
                exc = PoisonMessage(f"unreadable message ({type(exc).__name__})")
            poison.append(m)
            refuse(store, m, str(exc))
            log.warning(f"poison message {m.message_id}: {exc}")
            continue
        if not parsed:  # s3:TestEvent
            to_delete.append(m)
            continue
        arrivals[m.message_id] = parsed
        follow_ups[m.message_id] = max(a.metadata.get("follow_up", 0) for a in parsed)
    uploads = [a.upload for parsed in arrivals.values() for a in parsed]
    plan = plan_runs(instance, tracker, uploads, max_batch)
    return Triage(plan, arrivals, follow_ups, to_delete, poison)


def settle(queue: UploadQueue, store: ObjectStore, tracker: ProcessingTracker, messages: list[Message],
           t: Triage, log: logging.Logger, launched: frozenset[str] = frozenset()) -> None:
    """Delete what is done with, replace what still waits for its run, release poison.

    `launched`: recordings whose run now exists (the ingest service launches runs before
    it settles; a sensor's runs are only requested, so it passes none)."""
    plan = t.plan
    followed: set[str] = set()
    follow_up_bodies: list[dict] = []
    to_delete = list(t.to_delete)
    for m in messages:
        arrivals = t.arrivals.get(m.message_id)
        if not arrivals:
            continue
        for a in arrivals:
            if a.upload.key in plan.refused:
                refuse(store, m, plan.refused[a.upload.key], a.upload.key)
                log.warning(f"refused upload in message {m.message_id}: {plan.refused[a.upload.key]}")
        pending = [a for a in arrivals if plan.decisions[a.recording_id] not in (RUNNING, FINAL)
                   and a.recording_id not in launched and a.recording_id not in followed
                   and a.upload.key not in plan.refused]
        for a in pending:
            followed.add(a.recording_id)
            n = t.follow_ups[m.message_id] + 1
            if n > MAX_FOLLOW_UPS:
                tracker.fail(a.recording_id, ProcessingError(
                    "ingest_timeout", "no run started for this recording", retryable=True))
                continue
            follow_up_bodies.append({"recording_id": a.recording_id, "s3_key": a.upload.key,
                                     "user_id": a.upload.user_id, "metadata": {"follow_up": n}})
        to_delete.append(m)
    queue.send_many(follow_up_bodies, delay_s=FOLLOW_UP_DELAY_S)  # before the originals go
    queue.delete(to_delete)
    queue.release(t.poison)


@sensor(job=process_recording, minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
        default_status=default_status(load_settings(), "sqs"),
        description="S3 notifications and app messages on the uploads queue → one run per recording.")
def sqs_upload_sensor(context: SensorEvaluationContext, queue: UploadQueue, store: ObjectStore,
                      tracker: ProcessingTracker) -> SensorResult:
    messages = receive(queue)
    t = triage(messages, context.instance, store, tracker, context.log, load_settings().max_batch)
    settle(queue, store, tracker, messages, t, context.log)
    if not t.plan.run_requests:
        return SensorResult(skip_reason=SkipReason(
            f"{len(messages)} message(s), {len(t.poison)} poison, no new recording"))
    return SensorResult(run_requests=t.plan.run_requests,
                        dynamic_partitions_requests=t.plan.partition_requests())

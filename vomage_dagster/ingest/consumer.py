"""The uploads queue: every message becomes runs, a refusal with its reason, or nothing.

SQS delivers at least once, out of order, sometimes malformed. One pass (`ingest_once`)
waits up to the queue's long poll for a first message, takes what else is there (at most
`MAX_MESSAGES` within `BUDGET_S`), plans the runs (`planner`), launches them, and then
settles each message:

- an S3 test event is deleted;
- a poison message (bad JSON, unknown bucket, key outside uploads/, schema error, any
  shape the parser refuses; the parser never raises anything else) is kept: its reason
  is written to `ingest-errors/<md5 of body>.json` and it comes back after a few
  seconds, until SQS moves it to the dead-letter queue after maxReceiveCount=3 receives
  (`vomage dlq list | redrive`);
- a message whose recordings all have a run now (launched here, or live already), are
  final, or are refused (another upload owns the id, noted in `ingest-errors/`) is deleted;
- a message with a recording whose launch failed is kept and comes back after a few
  seconds for another try; after three receives SQS moves it to the dead-letter queue,
  where it is noted, and the stranded-recordings sensor queues the recording again later.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterInstance, RunRequest

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.keys import INGEST_ERRORS_PREFIX
from vomage_dagster.domain.messages import Arrival, PoisonMessage, parse_message
from vomage_dagster.domain.run_tags import recordings_of_run, trace_tag
from vomage_dagster.ingest.early_mood import EarlyMood
from vomage_dagster.ingest.planner import LAUNCH, Plan, plan_runs
from vomage_dagster.resources import latency
from vomage_dagster.resources.queue import Message, UploadQueue
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.telemetry import tracing

MAX_MESSAGES = 100
# The uploads queue's redrive policy (deploy/cloudformation/vomage.yaml): after this many
# receives a message goes to the dead-letter queue.
MAX_RECEIVES = 3
BUDGET_S = 20.0


def refuse(store: ObjectStore, message: Message, reason: str, upload_key: str | None = None) -> None:
    """Keep why a message (or an upload it names, `upload_key`) was refused, for
    `vomage dlq list` and for erasure (S3 events carry keys URL-encoded)."""
    store.put_json(f"{INGEST_ERRORS_PREFIX}{message.md5}.json", {
        "message_id": message.message_id, "reason": reason, "body": message.body[:4000],
        **({"upload_key": upload_key} if upload_key else {}),
        "receive_count": message.receive_count,
        "seen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})


def receive(queue: UploadQueue, wait_s: int | None = None) -> list[Message]:
    """Wait up to `wait_s` (the queue's long poll) for a first message, then take what is there."""
    started = time.monotonic()
    received = queue.receive(10, wait_s=queue.wait_s if wait_s is None else wait_s)
    while received and len(received) < MAX_MESSAGES and time.monotonic() - started < BUDGET_S:
        more = queue.receive(min(10, MAX_MESSAGES - len(received)))
        if not more:
            break
        received += more
    return received


@dataclass
class Triage:
    """What one receive comes to: per message its arrivals, and what to drop or keep."""

    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)  # message id → its arrivals
    to_delete: list[Message] = field(default_factory=list)
    poison: list[Message] = field(default_factory=list)

    @property
    def uploads(self) -> list:
        return [a.upload for parsed in self.arrivals.values() for a in parsed]


def triage(messages: list[Message], store: ObjectStore, log: logging.Logger) -> Triage:
    """Parse every message; a poison one is noted and kept aside, never raised."""
    t = Triage()
    for m in messages:
        try:
            parsed = parse_message(m.body, store.bucket)
        except Exception as exc:  # PoisonMessage, or anything the parser did not foresee
            if not isinstance(exc, PoisonMessage):
                exc = PoisonMessage(f"unreadable message ({type(exc).__name__})")
            t.poison.append(m)
            refuse(store, m, str(exc))
            log.warning(f"poison message {m.message_id}: {exc}")
            continue
        if parsed:
            t.arrivals[m.message_id] = parsed
        else:  # s3:TestEvent
            t.to_delete.append(m)
    return t


def settle(queue: UploadQueue, store: ObjectStore, messages: list[Message], t: Triage, plan: Plan,
           launched: set[str], log: logging.Logger) -> None:
    """Delete what is done with, keep what waits for a launch, release poison."""
    to_delete, keep = list(t.to_delete), []
    for m in messages:
        arrivals = t.arrivals.get(m.message_id)
        if not arrivals:
            continue
        for a in arrivals:
            if a.upload.key in plan.refused:
                refuse(store, m, plan.refused[a.upload.key], a.upload.key)
                log.warning(f"refused an upload in message {m.message_id}: {plan.refused[a.upload.key]}")
        waiting = [a for a in arrivals
                   if plan.decisions.get(a.recording_id) == LAUNCH and a.recording_id not in launched]
        if waiting:
            if m.receive_count >= MAX_RECEIVES:  # its last receive: say why it goes to the dead letters
                refuse(store, m, "no run could be launched for this recording; the stranded-recordings "
                                 "sensor queues it again")
            keep.append(m)
        else:
            to_delete.append(m)
    queue.delete(to_delete)
    queue.release(t.poison + keep)


class Held:
    """Messages S3 would not have delivered yet (the AWS simulation, `_delivered`), kept in
    this process until they are due while the ingest goes on receiving: what arrives
    meanwhile (the app's notice of the same upload) is not held up behind them."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Message]] = []

    def add(self, later: list[tuple[float, Message]]) -> None:
        self.messages += later

    def take_due(self) -> list[Message]:
        now = time.time()
        ready = [m for at, m in self.messages if at <= now]
        self.messages = [(at, m) for at, m in self.messages if at > now]
        return ready

    def wait_s(self, longest: int) -> int:
        """How long a receive may wait: not past the next held message's time."""
        if not self.messages:
            return longest
        return max(0, min(longest, int(min(at for at, _ in self.messages) - time.time())))


def ingest_once(queue: UploadQueue, store: ObjectStore, instance: DagsterInstance, tracker: ProcessingTracker,
                launch: Callable[[RunRequest], str], max_batch: int, log: logging.Logger,
                backlog: Callable[[float], None] | None = None, early: EarlyMood | None = None,
                held: Held | None = None, gathered: list[Message] | None = None) -> int:
    """One receive (waiting up to the queue's long poll) and its runs; the recordings
    launched. `backlog` is told the age of the oldest message received (seconds); `early`
    asks the moods of the recordings about to be launched while their runs start (`early_mood`); `held` keeps
    the messages of the AWS simulation's notification delay across passes; `gathered`:
    the messages `gather` received during a hold, launched with this pass's (and emptied)."""
    held = held if held is not None else Held()
    pending = list(gathered or [])
    if gathered:
        gathered.clear()
    messages = pending + receive(queue, 0 if pending else held.wait_s(queue.wait_s))
    if held.messages and not messages:
        time.sleep(max(0.0, min(0.05, min(at for at, _ in held.messages) - time.time())))
    received_ns = time.time_ns()
    if backlog is not None and (sent := [m.sent_at for m in messages if m.sent_at]):
        backlog(max(0.0, received_ns / 1e9 - min(sent)))
    now = _arrived(messages, store.bucket, held)
    if not now:
        return 0
    return _handle(now, received_ns, queue, store, instance, tracker, launch, max_batch, log, early)


def gather(queue: UploadQueue, store: ObjectStore, tracker: ProcessingTracker, gathered: list[Message],
           early: EarlyMood | None = None, held: Held | None = None) -> int:
    """During a hold (the runs in flight fill their limit, `launcher.holding`): take what has
    arrived, without waiting, into `gathered` for the pass that launches it, and ask the
    early moods of the new recordings in it now, so a recording waiting for a run slot does
    not then also wait for its mood. Gathered messages stay received (invisible to other
    receivers, for the queue's visibility timeout) until that pass settles them. How many
    messages were gathered."""
    now = _arrived(queue.receive(10, wait_s=0), store.bucket, held if held is not None else Held())
    gathered += now
    if early is not None and now:
        early.start(_new_uploads(now, store.bucket, tracker))
    return len(now)


def _new_uploads(messages: list[Message], bucket: str, tracker: ProcessingTracker) -> list:
    """The uploads named by `messages` whose recording may still need its run: unknown, or
    registered to that upload, not final and not taken by a run. (Poison is left to triage.)"""
    uploads = {}
    for m in messages:
        try:
            uploads |= {a.recording_id: a.upload for a in parse_message(m.body, bucket)}
        except Exception:  # noqa: BLE001 - poison: `triage` notes it when the pass settles it
            continue
    if not uploads:
        return []
    known = tracker.status.get_many(list(uploads))
    return [u for rid, u in uploads.items()
            if (item := known.get(rid)) is None
            or (item.get("upload_key") == u.key and not life.is_final(item) and not item.get("owner"))]


def _arrived(messages: list[Message], bucket: str, held: Held) -> list[Message]:
    """Of `messages` and those held before, the ones delivered by now (`_delivered`); the
    others are held."""
    now, later = _delivered(messages, bucket)
    held.add(later)
    return now + held.take_due()


def _delivered(messages: list[Message], bucket: str) -> tuple[list[Message], list[tuple[float, Message]]]:
    """Under a latency profile with `s3_event_notification_s` (the local stack's AWS
    simulation): the messages S3 would have delivered by now, and those it would not have
    yet with when it would (epoch seconds). S3's notifications (and EventBridge's "Object
    Created") come a while after the object, moto's at once; the app's own messages are
    not delayed. Without a profile: all delivered."""
    profile = latency.active()
    if profile is None or "s3_event_notification_s" not in profile.figures:
        return messages, []
    now: list[Message] = []
    later: list[tuple[float, Message]] = []
    for m in messages:
        try:
            sources = {a.source for a in parse_message(m.body, bucket)}
        except Exception:  # poison: triage says why
            sources = set()
        at = (m.sent_at or time.time()) + (profile.seconds("s3_event_notification_s") or 0.0)
        if sources and sources <= {"s3-event", "eventbridge"} and at > time.time():
            later.append((at, m))
        else:
            now.append(m)
    return now, later


def _handle(messages: list[Message], received_ns: int, queue: UploadQueue, store: ObjectStore,
            instance: DagsterInstance, tracker: ProcessingTracker, launch: Callable[[RunRequest], str],
            max_batch: int, log: logging.Logger, early: EarlyMood | None = None) -> int:
    """Plan and launch the runs `messages` ask for, then settle them; the recordings launched."""
    t = triage(messages, store, log)
    plan = plan_runs(instance, tracker, t.uploads, max_batch)
    if early is not None:  # before the launches: the model's second is the longest wait
        early.start([u for u in t.uploads if plan.decisions.get(u.recording_id) == LAUNCH])
    carriers = {a.recording_id: m.attributes for m in messages for a in t.arrivals.get(m.message_id, [])
                if m.attributes}
    launched: set[str] = set()
    for request in plan.runs:
        recordings = recordings_of_run(request.tags)
        # Each recording's trace: its ingest (from this pass's receive to its run's launch),
        # continued by the run through the run's tags.
        spans = {rid: tracing.start_span("ingest", rid, carrier=carriers.get(rid), start_time=received_ns,
                                         attributes={"messaging.system": "aws_sqs",
                                                     "vomage.batch_size": len(recordings)})
                 for rid in recordings}
        request = request.with_replaced_attrs(tags={
            **request.tags, **{trace_tag(rid): tp for rid, span in spans.items()
                               if (tp := tracing.carrier_of(span).get("traceparent"))}})
        try:
            run_id = launch(request)
        except Exception as exc:  # one failed launch must not hold back the others
            log.warning(f"launch of {len(recordings)} recording(s) failed: {str(exc)[:300]}")
            for span in spans.values():
                span.set_status(tracing.Status(tracing.StatusCode.ERROR, "launch failed"))
                span.end()
            continue
        for span in spans.values():
            span.set_attribute("dagster.run_id", run_id)
            span.end()
        launched.update(recordings)
        log.debug(f"launched run {run_id} for {len(recordings)} recording(s)")
    settle(queue, store, messages, t, plan, launched, log)
    return len(launched)

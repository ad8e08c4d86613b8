"""Running the stages for the recordings of a run: one recording or a batch, in one step.

For each recording the run first becomes the owner of its attempt (`domain/lifecycle.py`):
a run the ingest launched owns the attempt it was launched for, a run started by hand
(the UI, a backfill) the current one. A run that cannot own a recording (another run
does, or it moved on) stands down: it notes why on the first asset and writes nothing.

Then the wanted stages run as a graph: a stage starts as soon as the stages it reads
(`stages.INPUTS`) are done, so stages that do not read each other run side by side
(transcript and recording_context today, because neither reads the other). A stage's
dependants start as soon as it has returned; its output is written to S3 beside them,
and its events are reported once it is written (while the next stage runs), so neither
the write nor Dagster's event writes are between two stages. The stage that marks the
recording complete starts once every output is written. A stage whose input is not part
of this run reads it from S3. Every recording of a batch runs at once: on AWS the stages
wait on remote services, so a batch of 10 costs about one recording's latency (one run,
one set of step events instead of ten).

Each stage that succeeds is materialized at once, for its partition only (the UI sees
the transcript before the image exists). A stage that fails ends its recording `failed`
with the reason (`failures`), gets an observation saying so on its asset, and its
dependants do not run; the other recordings go on. At the end the step fails if any
recording did, so Dagster reports the partitions it planned and did not get as failed.
"""

import contextvars
import datetime as dt
import logging
import queue
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    BackfillPolicy,
    BetaWarning,
    DagsterInstance,
    DagsterLogManager,
    Failure,
    MetadataValue,
    RunsFilter,
)
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.tags import ROOT_RUN_ID_TAG

from vomage_dagster.assets.failures import recording_stage
from vomage_dagster.assets.stages import INPUTS, STAGES, StageResources
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain import quality
from vomage_dagster.domain.errors import RECORDING_ID_TAKEN, ProcessingError
from vomage_dagster.domain.keys import UPLOADS_PREFIX, parse_upload_key, processed_key
from vomage_dagster.settings import Settings
from vomage_dagster.telemetry import tracing

# The product plan: batch up to 10 requests. The ingest uses `VOMAGE_MAX_BATCH`, which can
# lower it (1 turns batching off); UI backfills and the thread pools use the default.
MAX_BATCH = Settings.max_batch
# A backfill launched from the UI runs in batches of the same size as the ingest's.
# (`backfill_policy` is marked beta in Dagster 1.13; said once here, not at every import.)
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
BATCH_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=MAX_BATCH)

# Pools for the life of the run process (their threads keep their DynamoDB Table
# resources, see resources.aws): one thread per recording of a batch, two per recording
# for its stages (two run side by side at most today), one for its outputs' writes.
_recordings_pool = ThreadPoolExecutor(max_workers=MAX_BATCH, thread_name_prefix="recording")
_stages_pool = ThreadPoolExecutor(max_workers=2 * MAX_BATCH, thread_name_prefix="stage")
_puts_pool = ThreadPoolExecutor(max_workers=MAX_BATCH, thread_name_prefix="stage-output")
_DONE = object()
# The stage that marks its recording complete: it starts once every other output is stored.
COMPLETES = {"published_record"}
log = logging.getLogger(__name__)

STOOD_DOWN = "stood down"


class MissingInput(Failure):
    """A stage was asked for without its input: a subset run before the stage it reads."""


def run_recordings(res: StageResources, keys: list[str], tagged: dict[str, int], owner: str,
                   live: Callable[[str], bool], wanted: list[str], checks: set[str],
                   log: DagsterLogManager, *, traces: dict[str, dict[str, str]] | None = None,
                   queued_at: dt.datetime | None = None,
                   run_id: str = "") -> Iterator[AssetMaterialization | AssetObservation | AssetCheckEvaluation]:
    """Own, then run the `wanted` stages of, every recording in `keys`, yielding each asset
    event as it happens; raise at the end if any recording failed.

    `tagged`: recording → the attempt the ingest launched this run for (empty for a run
    started by hand); `owner`: this run's root run id; `live`: whether another owner's run
    is still in flight; `checks`: the assets whose quality checks this run reports;
    `traces`: recording → the trace context the ingest handed on (run tags); `queued_at`:
    when the run was created (its wait for a worker shows in each recording's trace)."""
    traces = traces or {}

    def one(rid: str) -> Iterator:
        span = _run_span(rid, traces.get(rid), queued_at, run_id)
        try:
            yield from _recording(res, rid, tagged.get(rid), owner, live, wanted, checks, span)
        except BaseException as exc:
            span.set_status(tracing.Status(tracing.StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()

    if len(keys) == 1:  # in this thread: no hand-over, and the run's own thread state
        yield from one(keys[0])
        return
    events: queue.Queue = queue.Queue()
    failures: dict[str, BaseException] = {}

    def work(rid: str) -> None:
        try:
            for event in one(rid):
                events.put(event)
        except BaseException as exc:  # recorded by recording_stage; the batch goes on
            failures[rid] = exc
        finally:
            events.put(_DONE)

    for rid in keys:
        _recordings_pool.submit(contextvars.copy_context().run, work, rid)
    running = len(keys)
    while running:
        event = events.get()
        if event is _DONE:
            running -= 1
        else:
            yield event
    if failures:
        reasons = "; ".join(f"{rid}: {_reason(exc)}" for rid, exc in list(failures.items())[:5])
        log.warning(f"{len(failures)} of {len(keys)} recordings failed: {reasons}")
        raise Failure(description=f"{len(failures)} of {len(keys)} recordings failed ({reasons})",
                      metadata={"failed": len(failures), "succeeded": len(keys) - len(failures)},
                      allow_retries=False)


def _run_span(rid: str, carrier: dict[str, str] | None, queued_at: dt.datetime | None, run_id: str):
    """The recording's part of this run, under the ingest's launch (or the root); with the
    run's wait from its creation to now (queue, hand-over to a worker) before it."""
    now_ns = dt.datetime.now(dt.UTC).timestamp() * 1e9
    if queued_at is not None:
        queued = tracing.start_span("run queued", rid, carrier=carrier, start_time=int(queued_at.timestamp() * 1e9))
        queued.end(end_time=int(now_ns))
    return tracing.start_span("run", rid, carrier=carrier, start_time=int(now_ns),
                              attributes={"dagster.run_id": run_id})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Failure):
        return exc.description or "failed"
    return f"internal error ({type(exc).__name__})"


def find_upload_key(res: StageResources, recording_id: str) -> str:
    """The upload of a recording nobody registered (a run started by hand): listed in the
    bucket. Two users' uploads naming the id: neither may take the other's record."""
    found = [obj.key for obj in res.store.list(UPLOADS_PREFIX)
             if (parsed := parse_upload_key(obj.key)) and parsed.recording_id == recording_id]
    if len(found) > 1:
        raise ProcessingError(RECORDING_ID_TAKEN, f"{len(found)} uploads claim recording {recording_id}")
    if not found:
        raise ProcessingError("not_found", f"no upload found for recording {recording_id}")
    return found[0]


def owner_runs_in_flight(instance: DagsterInstance, owner: str) -> list:
    """The run records of `owner` (a root run id) and its retries that are still in flight."""
    statuses = list(NOT_FINISHED_STATUSES)
    return [*instance.get_run_records(filters=RunsFilter(run_ids=[owner], statuses=statuses), limit=1),
            *instance.get_run_records(filters=RunsFilter(tags={ROOT_RUN_ID_TAG: owner}, statuses=statuses),
                                      limit=5)]


def owner_live(instance: DagsterInstance, owner: str) -> bool:
    """Whether the run `owner` (a root run id) or one of its retries is still in flight."""
    return bool(owner_runs_in_flight(instance, owner))


def take_attempt(res: StageResources, rid: str, tagged: int | None, owner: str,
                 live: Callable[[str], bool]) -> life.Attempt | str:
    """This run's attempt of `rid`, or why it stands down.

    A run the ingest launched owns the attempt it was launched for, or nothing. A run
    started by hand registers a recording nobody registered, owns the current attempt,
    and re-materializes a complete recording without touching its status. Either takes
    over an attempt whose owner's run has ended (`live`: is that run in flight)."""
    tracker = res.tracker
    item = tracker.status.get(rid) if tagged is None else None
    if tagged is None:
        if item is None:
            with recording_stage(tracker, life.Attempt(rid, 1, owner, "")):
                key = find_upload_key(res, rid)
            item = tracker.register(rid, key) or tracker.status.get(rid)
        if item.get("stage") == life.COMPLETE:
            return life.Attempt(rid, int(item["attempt"]), owner, item["upload_key"], rematerialize=True)
        if item.get("stage") == life.FAILED:
            return life.why_not_owned(item, int(item["attempt"]), owner) + "; `vomage retry` starts a new attempt"
    number = tagged if tagged is not None else int(item["attempt"])
    owned = tracker.own(rid, number, owner)
    if owned is None:
        current = tracker.status.get(rid)
        other = (current or {}).get("owner")
        if (other and other != owner and int(current.get("attempt", 1)) == number and not life.is_final(current)
                and not live(other)):
            owned = tracker.supersede(rid, number, other, owner)
        if owned is None:
            return life.why_not_owned(tracker.status.get(rid), number, owner)
    return life.Attempt(rid, number, owner, owned["upload_key"], ingested=tagged is not None)


Event = AssetMaterialization | AssetObservation | AssetCheckEvaluation


def _recording(res: StageResources, rid: str, tagged: int | None, owner: str, live: Callable[[str], bool],
               wanted: list[str], checks: set[str], span: tracing.trace.Span) -> Iterator[Event]:
    if not wanted:
        return
    attempt = take_attempt(res, rid, tagged, owner, live)
    if isinstance(attempt, str):
        log.info("recording %s: this run stands down (%s)", rid, attempt)
        yield AssetObservation(asset_key=wanted[0], partition=rid, metadata={
            "outcome": MetadataValue.text(f"{STOOD_DOWN}: {attempt}")})
        return
    span.set_attribute("vomage.attempt", attempt.number)
    yield from _stages(res, attempt, wanted, checks, span)


def _stages(res: StageResources, att: life.Attempt, wanted: list[str], checks: set[str],
            span: tracing.trace.Span) -> Iterator[AssetMaterialization | AssetObservation | AssetCheckEvaluation]:
    """The wanted stages of one attempt as a graph; raises (after its observation) once a
    stage has failed and the stages already running have ended."""
    rid = att.recording_id
    outputs: dict[str, dict] = {}

    def load(name: str) -> dict:
        if name not in outputs:
            found = res.store.get_json_or_none(processed_key(rid, f"{name}.json"))
            if found is None:
                raise MissingInput(description=f"{name} of {rid} does not exist yet: materialize it first",
                                   allow_retries=False)
            outputs[name] = found
        return outputs[name]

    def run(name: str) -> tuple[dict, list]:
        """The stage's output and the events to report once it is stored."""
        inputs = {upstream: load(upstream) for upstream in INPUTS[name]}
        with tracing.recording_span(name, rid, parent=span, attributes={tracing.STAGE: name}), \
                recording_stage(res.tracker, att):
            out, metadata = STAGES[name](res, att, inputs)
        key = processed_key(rid, f"{name}.json")
        events: list = [AssetMaterialization(asset_key=name, partition=rid, metadata={
            **metadata, "output": MetadataValue.url(res.store.browser_url(key))})]
        if name in quality.CHECKS and name in checks:
            found = quality.check(name, out, inputs)
            events.append(AssetCheckEvaluation(
                asset_key=AssetKey(name), check_name=quality.CHECKS[name][0], passed=found.passed,
                metadata=found.metadata, severity=AssetCheckSeverity.WARN, description=found.description,
                partition=rid))
        return out, events

    def store(name: str, out: dict) -> None:
        res.store.put_json(processed_key(rid, f"{name}.json"), out)

    def failed(name: str, exc: BaseException) -> AssetObservation:
        # The catalog shows the partition failed; this says why (the asset's Events tab).
        extra = {k: v for k, v in (exc.metadata if isinstance(exc, Failure) else {}).items()
                 if k in ("error_code", "retryable")}
        return AssetObservation(asset_key=name, partition=rid, description=f"failed: {_reason(exc)}",
                                metadata={"outcome": MetadataValue.text(f"failed: {_reason(exc)}"), **extra})

    waiting = list(wanted)  # in order: a stage's inputs come before it
    running: dict[Future, str] = {}
    storing: dict[Future, tuple[str, list]] = {}  # outputs being written, with their events
    first_failure: BaseException | None = None

    def ready() -> list[str]:
        """Stages none of whose inputs is still to come in this run; the stage that
        completes the recording also waits until every output is stored."""
        pending = set(waiting) | set(running.values())
        return [n for n in waiting if not pending.intersection(INPUTS[n]) and not (n in COMPLETES and storing)]

    def start_ready() -> None:
        for name in ready():
            waiting.remove(name)
            running[_stages_pool.submit(contextvars.copy_context().run, run, name)] = name

    while waiting or running or storing:
        if first_failure is not None:
            waiting.clear()  # the stages after a failure do not run; the running ones end
        start_ready()
        if not running and not storing:
            break
        done, _ = wait([*running, *storing], return_when=FIRST_COMPLETED)
        report: list = []
        for future in done:
            if future in storing:  # an output stored: its events can be reported
                name, events = storing.pop(future)
                if (exc := future.exception()) is None:
                    report += events
                else:
                    report.append(failed(name, exc))
                    first_failure = first_failure or exc
                continue
            name = running.pop(future)
            exc = future.exception()
            if exc is None:
                out, events = future.result()
                outputs[name] = out  # its dependants start now; its output is stored beside them
                storing[_puts_pool.submit(contextvars.copy_context().run, store, name, out)] = (name, events)
            else:
                report.append(failed(name, exc))
                first_failure = first_failure or exc
        if first_failure is None:  # what is ready starts before Dagster writes the events
            start_ready()
        yield from report
    if first_failure is not None:
        raise first_failure

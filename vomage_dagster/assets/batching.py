"""Running the stages for the recordings of a run: one recording or a batch, in one step.

A run launched for a range of `recordings` partitions (the sensor groups recordings
that arrive together, up to `MAX_BATCH`) computes every recording of it in one step: one
run process and one set of step events instead of one per recording (DESIGN §5:
50 partitions in one run ≈ 6.6 s, 50 runs ≈ 30 s). Every recording of the batch is in
flight at once, and within a recording `transcript` and `recording_context` run side by
side: on AWS the stages wait on remote services, so a batch of 10 costs about one
recording's latency.

Each stage that succeeds is materialized at once, for its partition only (the UI sees
the transcript before the image exists). Recordings stay independent: a recording whose
stage fails is marked `failed` with its reason (see `failures`), gets an observation
saying so on the asset that failed, and stops there; the others go on. At the end the
step fails if any recording did, so Dagster reports the partitions it planned and did
not get as failed.
"""

import logging
import queue
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    BackfillPolicy,
    BetaWarning,
    DagsterLogManager,
    Failure,
    MetadataValue,
)

from ..domain import quality
from ..domain.keys import processed_key
from ..resources.status import TAKEN, WAITING
from ..settings import Settings
from .failures import recording_stage
from .stages import INPUTS, STAGES, StageEnv

# The product plan: batch up to 10 requests. The sensors use `VOMAGE_MAX_BATCH`, which
# can lower it (1 turns batching off); UI backfills and the thread pools use the default.
MAX_BATCH = Settings.max_batch
# A backfill launched from the UI runs in batches of the same size as the sensor's.
# (`backfill_policy` is marked beta in Dagster 1.13; said once here, not at every import.)
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
BATCH_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=MAX_BATCH)

# Pools for the life of the run process (their threads keep their DynamoDB Table
# resources, see resources.aws): one thread per recording of a batch, and one more per
# recording for `recording_context`, which runs beside `transcript`.
_recordings_pool = ThreadPoolExecutor(max_workers=MAX_BATCH, thread_name_prefix="recording")
_side_pool = ThreadPoolExecutor(max_workers=MAX_BATCH, thread_name_prefix="context")
_DONE = object()
log = logging.getLogger(__name__)


class MissingInput(Failure):
    """A stage was asked for without its input: a subset run before the stage it reads."""


def run_chain(env: StageEnv, keys: list[str], wanted: list[str],
              log: DagsterLogManager) -> Iterator[AssetMaterialization | AssetObservation]:
    """Run the `wanted` stages (in order) for every recording in `keys`, yielding each
    asset event as it happens; raise at the end if any recording failed."""
    if len(keys) == 1:  # in this thread: no hand-over, and the run's own thread state
        yield from _chain(env, keys[0], wanted)
        return
    events: queue.Queue = queue.Queue()
    failures: dict[str, BaseException] = {}

    def one(rid: str) -> None:
        try:
            for event in _chain(env, rid, wanted):
                events.put(event)
        except BaseException as exc:  # recorded by recording_stage; the batch goes on
            failures[rid] = exc
        finally:
            events.put(_DONE)

    for rid in keys:
        _recordings_pool.submit(one, rid)
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


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Failure):
        return exc.description or "failed"
    return f"internal error ({type(exc).__name__})"


STOOD_DOWN = "stood down"
# A claim another claimant made moments ago goes stale (60 s) unless its run takes it.
CLAIM_WAIT_S = 90.0


def _take_claim(env: StageEnv, rid: str) -> bool:
    """True if this run may process `rid`: it took the recording's claim, waiting while
    another claimant's fresh claim may still be taken by that claimant's run."""
    deadline = time.monotonic() + CLAIM_WAIT_S
    while True:
        answer = env.tracker.status.take_claim(rid, env.attempts.get(rid, 1), env.claim)
        if answer != WAITING or time.monotonic() > deadline:
            return answer == TAKEN
        time.sleep(2.0)


def _chain(env: StageEnv, rid: str, wanted: list[str]) -> Iterator[AssetMaterialization | AssetObservation]:
    """One recording's stages in order; raises (after its observation) at the first that fails.

    A run the planner requested first takes its claim on the recording: if another
    claimant holds it now, this run processes nothing for it and leaves its status alone
    (the run holding the claim ends it)."""
    if env.claim and wanted and not _take_claim(env, rid):
        log.info("recording %s: its claim is held by another run; this run stands down", rid)
        yield AssetObservation(asset_key=wanted[0], partition=rid, metadata={
            "outcome": MetadataValue.text(f"{STOOD_DOWN}: another run holds this recording's claim")})
        return
    outputs: dict[str, dict] = {}

    def load(name: str) -> dict:
        if name not in outputs:
            found = env.store.get_json_or_none(processed_key(rid, f"{name}.json"))
            if found is None:
                raise MissingInput(description=f"{name} of {rid} does not exist yet: materialize it first",
                                   allow_retries=False)
            outputs[name] = found
        return outputs[name]

    def run(name: str) -> list:
        inputs = {upstream: load(upstream) for upstream in INPUTS[name]}
        with recording_stage(env.tracker, rid):
            out, metadata = STAGES[name](env, rid, inputs)
        key = processed_key(rid, f"{name}.json")
        env.store.put_json(key, out)
        outputs[name] = out
        events: list = [AssetMaterialization(asset_key=name, partition=rid, metadata={
            **metadata, "output": MetadataValue.url(env.store.browser_url(key))})]
        if name in quality.CHECKS and name in env.checks:
            found = quality.check(name, out, inputs)
            events.append(AssetCheckEvaluation(
                asset_key=AssetKey(name), check_name=quality.CHECKS[name][0], passed=found.passed,
                metadata=found.metadata, severity=AssetCheckSeverity.WARN, description=found.description,
                partition=rid))
        return events

    def failed(name: str, exc: BaseException) -> AssetObservation:
        # The catalog shows the partition failed; this says why (the asset's Events tab).
        extra = {k: v for k, v in (exc.metadata if isinstance(exc, Failure) else {}).items()
                 if k in ("error_code", "retryable")}
        return AssetObservation(asset_key=name, partition=rid, description=f"failed: {_reason(exc)}",
                                metadata={"outcome": MetadataValue.text(f"failed: {_reason(exc)}"), **extra})

    steps = list(wanted)
    while steps:
        name = steps.pop(0)
        beside = None
        if name == "transcript" and "recording_context" in steps:
            steps.remove("recording_context")
            beside = _side_pool.submit(run, "recording_context")
        try:
            produced = run(name)
        except BaseException as exc:
            yield failed(name, exc)
            if beside is not None and beside.exception() is None:
                yield from beside.result()  # it finished; what it produced stays produced
            raise
        yield from produced
        if beside is not None:
            try:
                produced = beside.result()
            except BaseException as exc:
                yield failed("recording_context", exc)
                raise
            yield from produced

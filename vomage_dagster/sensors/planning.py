"""From arrivals to run requests, shared by the S3 and SQS sensors.

For each recording: skip it if its status is final, treat it as running if a run of
its current attempt exists, otherwise claim it in the status table (only one claimant
wins, whichever sensor or delivery it is) and request a run for it.

Recordings claimed together are micro-batched: new recordings get their partitions
added here, in arrival order, and each stretch of consecutive partitions (at most
`MAX_BATCH`) becomes one run over that partition range (`assets.batching`). A recording
whose partition already exists (a retry) or that another writer's partition split off
runs alone. Every run carries one tag per recording, `vomage/recording/<id>` = attempt,
which is how "does a run of this attempt exist" is answered for batches and single runs
alike; `run_key` (the recording id, `#<attempt>` for retries, `+<n>` for a batch) makes
Dagster itself refuse a second run from the same sensor. The claims of one plan share a
token, carried by its runs as `vomage/claim`: a run takes its claims before it processes
anything, so a request that outlived its claim (resumed after a crash, once the claim
went stale and another claimant took it) processes nothing.
"""

import uuid
from dataclasses import dataclass, field

from dagster import (
    DagsterInstance,
    PartitionKeyRange,
    RunRequest,
    RunsFilter,
    partition_loading_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ..assets.batching import MAX_BATCH
from ..domain.errors import RECORDING_ID_TAKEN
from ..domain.keys import UploadKey
from ..partitions import recordings
from ..resources.tracker import ProcessingTracker, is_terminal
from ..run_tags import ATTEMPT_TAG, BATCH_TAG, CLAIM_TAG, RECORDING_TAG, UPLOAD_KEY_TAG, recording_tag

REQUESTED = "requested"  # a run is requested in this tick
RUNNING = "running"  # a run of the current attempt already exists
FINAL = "final"  # complete or failed
CLAIMED = "claimed"  # another sensor or tick claimed it moments ago; look again later


def run_key(recording_id: str, attempt: int) -> str:
    return recording_id if attempt == 1 else f"{recording_id}#{attempt}"


def keys_in_range(instance: DagsterInstance, start: str, end: str) -> list[str]:
    """The recordings a partition range covers."""
    with partition_loading_context(dynamic_partitions_store=instance):
        return list(recordings.get_partition_keys_in_range(PartitionKeyRange(start, end)))


def run_exists(instance: DagsterInstance, recording_id: str, attempt: int) -> bool:
    records = instance.get_run_records(
        filters=RunsFilter(tags={recording_tag(recording_id): str(attempt)}), limit=1)
    return bool(records)


@dataclass
class Claim:
    upload: UploadKey
    attempt: int


@dataclass
class Plan:
    run_requests: list[RunRequest] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # recording id → decision
    added_partitions: list[str] = field(default_factory=list)
    # Upload key → why it is refused: its recording id is registered to another upload.
    refused: dict[str, str] = field(default_factory=dict)
    token: str = ""  # the claims of this plan, carried by its runs

    def partition_requests(self) -> list:
        """Shown on the tick in the UI; the partitions were already added by the plan."""
        return [recordings.build_add_request(self.added_partitions)] if self.added_partitions else []


def plan_runs(instance: DagsterInstance, tracker: ProcessingTracker, uploads: list[UploadKey],
              max_batch: int = MAX_BATCH) -> Plan:
    plan = Plan(token=uuid.uuid4().hex)
    unique: dict[str, UploadKey] = {}
    for u in uploads:
        unique.setdefault(u.recording_id, u)
    statuses = tracker.status.get_many(list(unique)) if unique else {}
    claims: dict[str, Claim] = {}
    for rid, upload in unique.items():
        item = statuses.get(rid)
        if item is None:
            item = tracker.register(rid, upload.key) or tracker.status.get(rid) or {}
        owner = item.get("upload_key")
        # A recording id belongs to the first upload registered with it: another user's
        # upload (or another file) naming the same id never runs as, or over, that recording.
        for other in (u for u in uploads if u.recording_id == rid and owner and u.key != owner):
            plan.refused[other.key] = (f"{RECORDING_ID_TAKEN}: recording id {rid} belongs to another upload")
        if owner and owner != upload.key:
            plan.decisions[rid] = FINAL if is_terminal(item) else RUNNING
            continue
        if is_terminal(item):
            plan.decisions[rid] = FINAL
            continue
        attempt = int(item.get("attempt", 1))
        if run_exists(instance, rid, attempt):
            plan.decisions[rid] = RUNNING
        elif tracker.status.claim_run(rid, attempt, plan.token):
            plan.decisions[rid] = REQUESTED
            claims[rid] = Claim(upload, attempt)
        else:
            plan.decisions[rid] = CLAIMED
    for batch in _batches(instance, plan, claims, max_batch):
        plan.run_requests.append(_run_request(batch, claims, plan.token))
    return plan


def _batches(instance: DagsterInstance, plan: Plan, claims: dict[str, Claim],
             max_batch: int) -> list[list[str]]:
    """Group claimed recordings into runs of consecutive partitions."""
    new = [rid for rid in claims if not instance.has_dynamic_partition(recordings.name, rid)]
    alone = [[rid] for rid in claims if rid not in new]
    if not new:
        return alone
    instance.add_dynamic_partitions(recordings.name, new)
    plan.added_partitions = new
    if max_batch <= 1 or len(new) == 1:
        return alone + [[rid] for rid in new]
    # The newest partitions, oldest first: ours, and any another writer added meanwhile.
    latest = list(instance.get_paginated_dynamic_partitions(
        recordings.name, limit=len(new) + 100, ascending=False).results)[::-1]
    wanted = set(new)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in latest:
        if key in wanted and len(current) < max_batch:
            current.append(key)
            continue
        if current:
            batches.append(current)
        current = [key] if key in wanted else []
    if current:
        batches.append(current)
    placed = {rid for b in batches for rid in b}
    return alone + batches + [[rid] for rid in new if rid not in placed]


def _run_request(batch: list[str], claims: dict[str, Claim], token: str) -> RunRequest:
    tags = {CLAIM_TAG: token, **{recording_tag(rid): str(claims[rid].attempt) for rid in batch}}
    if len(batch) == 1:
        rid = batch[0]
        claim = claims[rid]
        return RunRequest(
            run_key=run_key(rid, claim.attempt), partition_key=rid,
            tags={**tags, UPLOAD_KEY_TAG: claim.upload.key, RECORDING_TAG: rid,
                  ATTEMPT_TAG: str(claim.attempt)})
    return RunRequest(
        run_key=f"{batch[0]}+{len(batch)}",
        tags={**tags, ASSET_PARTITION_RANGE_START_TAG: batch[0],
              ASSET_PARTITION_RANGE_END_TAG: batch[-1], BATCH_TAG: str(len(batch))})

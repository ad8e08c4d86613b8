"""From the uploads of a receive to the runs to launch.

For each recording: register it (the first upload registered with an id owns it; another
upload naming the id is refused), skip it if it is final or a live run of its current
attempt exists, otherwise plan a run for it. Recordings planned together are
micro-batched: new recordings get their partitions added here, in arrival order, and
each stretch of consecutive partitions (at most `max_batch`) becomes one run over that
partition range. A recording whose partition already exists (a retry) or that another
writer's partition split off runs alone. Every run carries one tag per recording,
`vomage/recording/<id>` = attempt (`domain/run_tags.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import DagsterInstance, RunRequest, RunsFilter
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.errors import RECORDING_ID_TAKEN
from vomage_dagster.domain.keys import UploadKey
from vomage_dagster.domain.run_tags import BATCH_TAG, recording_tag
from vomage_dagster.resources.tracker import ProcessingTracker

LAUNCH = "launch"  # a run is planned in this receive
RUNNING = "running"  # a live run of the current attempt exists
FINAL = "final"  # complete or failed
REFUSED = "refused"  # every upload naming it belongs to another

# A run of an attempt in these states may still process it: no second one. (A run that
# ended without ending its recording leaves it to the stranded-recordings sensor.)
LIVE = list(NOT_FINISHED_STATUSES)


@dataclass
class Plan:
    runs: list[RunRequest] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # recording id → decision
    attempts: dict[str, int] = field(default_factory=dict)  # recording id → its current attempt
    # Upload key → why it is refused: its recording id is registered to another upload.
    refused: dict[str, str] = field(default_factory=dict)
    added_partitions: list[str] = field(default_factory=list)


def live_run_exists(instance: DagsterInstance, recording_id: str, attempt: int) -> bool:
    return bool(instance.get_run_records(
        filters=RunsFilter(tags={recording_tag(recording_id): str(attempt)}, statuses=LIVE), limit=1))


def plan_runs(instance: DagsterInstance, tracker: ProcessingTracker, uploads: list[UploadKey],
              max_batch: int) -> Plan:
    plan = Plan()
    by_recording: dict[str, list[UploadKey]] = {}
    for u in uploads:
        by_recording.setdefault(u.recording_id, []).append(u)
    statuses = tracker.status.get_many(list(by_recording)) if by_recording else {}
    for rid, named in by_recording.items():
        item = statuses.get(rid)
        if item is None:
            item = tracker.register(rid, named[0].key) or tracker.status.get(rid) or {}
        owner_key = item.get("upload_key")
        # A recording id belongs to the first upload registered with it: another user's
        # upload (or another file) naming the same id never runs as, or over, that recording.
        for other in (u for u in named if u.key != owner_key):
            plan.refused[other.key] = f"{RECORDING_ID_TAKEN}: recording id {rid} belongs to another upload"
        attempt = int(item.get("attempt", 1))
        plan.attempts[rid] = attempt
        if all(u.key != owner_key for u in named):
            plan.decisions[rid] = REFUSED
        elif life.is_final(item):
            plan.decisions[rid] = FINAL
        elif live_run_exists(instance, rid, attempt):
            plan.decisions[rid] = RUNNING
        else:
            plan.decisions[rid] = LAUNCH
    wanted = [rid for rid, d in plan.decisions.items() if d == LAUNCH]
    for batch in _batches(instance, plan, wanted, max_batch):
        plan.runs.append(_run_request(batch, plan.attempts))
    return plan


def _batches(instance: DagsterInstance, plan: Plan, wanted: list[str], max_batch: int) -> list[list[str]]:
    """Group planned recordings into runs of consecutive partitions."""
    new = [rid for rid in wanted if not instance.has_dynamic_partition(recordings.name, rid)]
    alone = [[rid] for rid in wanted if rid not in new]
    if not new:
        return alone
    instance.add_dynamic_partitions(recordings.name, new)
    plan.added_partitions = new
    if max_batch <= 1 or len(new) == 1:
        return alone + [[rid] for rid in new]
    # The newest partitions, oldest first: ours, and any another writer added meanwhile.
    latest = list(instance.get_paginated_dynamic_partitions(
        recordings.name, limit=len(new) + 100, ascending=False).results)[::-1]
    todo = set(new)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in latest:
        if key in todo and len(current) < max_batch:
            current.append(key)
            continue
        if current:
            batches.append(current)
        current = [key] if key in todo else []
    if current:
        batches.append(current)
    placed = {rid for b in batches for rid in b}
    return alone + batches + [[rid] for rid in new if rid not in placed]


def _run_request(batch: list[str], attempts: dict[str, int]) -> RunRequest:
    tags = {recording_tag(rid): str(attempts[rid]) for rid in batch}
    if len(batch) == 1:
        return RunRequest(partition_key=batch[0], tags=tags)
    return RunRequest(tags={**tags, ASSET_PARTITION_RANGE_START_TAG: batch[0],
                            ASSET_PARTITION_RANGE_END_TAG: batch[-1], BATCH_TAG: str(len(batch))})

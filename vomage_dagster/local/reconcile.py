"""Reconcile what arrived with what came out: the check behind "never lost, never twice".

For a set of recording ids it counts final statuses, the runs that processed each
recording (a run that found its claim taken and stood down processed nothing, and is
counted apart), the materializations per asset partition, published records, and what
sits in the dead-letter queue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance, RunsFilter

from ..assets.batching import STOOD_DOWN
from ..assets.recording import KEYS
from ..resources.queue import UploadQueue
from ..resources.records import RecordsTable
from ..resources.status import StatusTable
from ..run_tags import recording_tag
from ..settings import Settings


@dataclass
class Reconciliation:
    uploads: int
    complete: int
    failed: int
    not_final: list[str]
    failure_codes: Counter
    runs_per_recording: Counter  # number of runs that processed it → how many recordings had that many
    materializations_twice: list[str]
    published: int
    dead_letters: int
    extra: dict = field(default_factory=dict)
    stood_down: int = 0
    # What made a recording's runs more than one (a few examples: which sensor asked,
    # with which run key, and how each run ended), so an unbalanced soak says why.
    multi_run_examples: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return (self.uploads == self.complete + self.failed and not self.not_final
                and set(self.runs_per_recording) <= {1} and not self.materializations_twice
                and self.published == self.complete)

    def table(self) -> str:
        rows = [
            ("uploads", self.uploads),
            ("complete", self.complete),
            ("failed", self.failed),
            ("  by code", ", ".join(f"{k} {v}" for k, v in sorted(self.failure_codes.items())) or "-"),
            ("not final", len(self.not_final)),
            ("recordings with 1 run", self.runs_per_recording.get(1, 0)),
            ("recordings with 0 or 2+ runs",
             sum(v for k, v in self.runs_per_recording.items() if k != 1)),
            ("runs that stood down (claim taken)", self.stood_down),
            ("asset partitions written twice", len(self.materializations_twice)),
            ("published records", self.published),
            ("dead-letter messages", self.dead_letters),
            *(("  e.g.", example) for example in self.multi_run_examples),
            *self.extra.items(),
            ("uploads = complete + failed", "yes" if self.uploads == self.complete + self.failed else "NO"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _events(instance: DagsterInstance, key: AssetKey, observations: bool = False) -> list:
    fetch = instance.fetch_observations if observations else instance.fetch_materializations
    records, cursor = [], None
    while True:
        page = fetch(key, limit=10_000, cursor=cursor)
        records += page.records
        if not page.has_more:
            return records
        cursor = page.cursor


ANY_ATTEMPT = [str(n) for n in range(1, 100)]


def reconcile(settings: Settings, instance: DagsterInstance, recording_ids: list[str]) -> Reconciliation:
    status = StatusTable(table_name=settings.status_table, region_name=settings.region)
    records = RecordsTable(table_name=settings.records_table, region_name=settings.region)
    queue = UploadQueue(queue_name=settings.uploads_queue, region_name=settings.region,
                        dead_letter_queue_name=settings.dead_letter_queue)
    items = status.get_many(recording_ids)
    stages = Counter(item["stage"] for item in items.values())
    codes = Counter(item["error"]["code"] for item in items.values()
                    if item["stage"] == "failed" and item.get("error"))
    wanted = set(recording_ids)
    stood_down = {(e.run_id, e.partition_key) for key in KEYS
                  for e in _events(instance, key, observations=True)
                  if e.partition_key in wanted and str(getattr(
                      e.asset_observation.metadata.get("outcome"), "value", "")).startswith(STOOD_DOWN)}
    runs: Counter = Counter()
    examples: list[str] = []
    for rid in recording_ids:
        found = [r for r in instance.get_run_records(RunsFilter(tags={recording_tag(rid): ANY_ATTEMPT}))
                 if (r.dagster_run.run_id, rid) not in stood_down]
        runs[len(found)] += 1
        if len(found) > 1 and len(examples) < 5:
            examples.append(f"{rid}: " + "; ".join(_describe(r) for r in found))
        elif not found and len(examples) < 5:
            item = status.get(rid) or {}
            examples.append(f"{rid}: no run; " + ", ".join(
                f"{k} {item.get(k)}" for k in ("stage", "attempt", "requeues", "claimed_attempt",
                                              "run_claimed_at", "updated_at"))
                + f", error {(item.get('error') or {}).get('code')}")
    twice = []
    for key in KEYS:
        per_partition = Counter(e.partition_key for e in _events(instance, key)
                                if e.partition_key in wanted)
        twice += [f"{key.to_user_string()}[{p}]" for p, n in per_partition.items() if n > 1]
    published = sum(1 for rid in recording_ids if records.get(rid) is not None)
    return Reconciliation(
        uploads=len(recording_ids),
        complete=stages.get("complete", 0),
        failed=stages.get("failed", 0),
        not_final=[rid for rid in recording_ids
                   if items.get(rid, {}).get("stage") not in ("complete", "failed")],
        failure_codes=codes,
        runs_per_recording=runs,
        materializations_twice=twice,
        published=published,
        dead_letters=len(queue.peek_dead_letters()),
        multi_run_examples=examples,
        stood_down=len(stood_down),
    )


def _describe(record) -> str:
    run = record.dagster_run
    return (f"{run.run_id[:8]} {run.status.value} by {run.tags.get('dagster/sensor_name', 'hand')}"
            f" key {run.tags.get('dagster/run_key', '-')} at {record.create_timestamp:%H:%M:%S}")

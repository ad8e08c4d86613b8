"""Reconcile what arrived with what came out: the check behind "never lost, never twice".

For a set of recording ids it counts final statuses, the runs that processed each
recording (its attempt's owner, and any run that wrote one of its assets; a run that found
the attempt owned by another and stood down, or that ended before it came to the
recording, processed nothing and is counted apart), the materializations per asset
partition, published records, and what sits in the dead-letter queue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance, RunsFilter

from vomage_dagster.assets.recording import KEYS
from vomage_dagster.assets.runner import STOOD_DOWN
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.resources.build import build_resources
from vomage_dagster.settings import Settings


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
    ended_before_starting: int = 0  # runs that ended before they came to a recording (it was queued again)
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
            ("runs that stood down (attempt owned by another)", self.stood_down),
            ("runs that ended before starting a recording", self.ended_before_starting),
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
    resources = build_resources(settings)
    status, records, queue = resources["tracker"].status, resources["records"], resources["queue"]
    items = status.get_many(recording_ids)
    stages = Counter(item["stage"] for item in items.values())
    codes = Counter(item["error"]["code"] for item in items.values()
                    if item["stage"] == "failed" and item.get("error"))
    wanted = set(recording_ids)
    observed = [e for key in KEYS for e in _events(instance, key, observations=True) if e.partition_key in wanted]
    stood_down = {(e.run_id, e.partition_key) for e in observed
                  if _outcome(e).startswith(STOOD_DOWN)}
    # The runs that processed a recording: the one that owns its attempt, and any that
    # wrote one of its assets or recorded a stage's failure. A run that ended before it
    # came to a recording (killed at its start; the recording was queued again) touched
    # nothing of it and is counted apart.
    touched: dict[str, set[str]] = {}
    for key in KEYS:
        for e in _events(instance, key):
            if e.partition_key in wanted:
                touched.setdefault(e.partition_key, set()).add(e.run_id)
    for e in observed:
        if _outcome(e).startswith("failed"):
            touched.setdefault(e.partition_key, set()).add(e.run_id)
    runs: Counter = Counter()
    untouched = 0
    examples: list[str] = []
    for rid in recording_ids:
        launched = [r for r in instance.get_run_records(RunsFilter(tags={recording_tag(rid): ANY_ATTEMPT}))
                    if (r.dagster_run.run_id, rid) not in stood_down]
        owner = (items.get(rid) or {}).get("owner")
        found = [r for r in launched if r.dagster_run.run_id in touched.get(rid, set())
                 or (r.dagster_run.root_run_id or r.dagster_run.run_id) == owner]
        untouched += len(launched) - len(found)
        runs[len(found)] += 1
        if len(found) > 1 and len(examples) < 5:
            examples.append(f"{rid}: " + "; ".join(_describe(r) for r in found))
        elif not found and len(examples) < 5:
            item = status.get(rid) or {}
            examples.append(f"{rid}: no run; " + ", ".join(
                f"{k} {item.get(k)}" for k in ("stage", "attempt", "requeues", "owner", "updated_at"))
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
        ended_before_starting=untouched,
    )


def _outcome(event) -> str:
    return str(getattr(event.asset_observation.metadata.get("outcome"), "value", ""))


def _describe(record) -> str:
    run = record.dagster_run
    by = run.tags.get("vomage/launched-by") or run.tags.get("dagster/sensor_name", "hand")
    return (f"{run.run_id[:8]} {run.status.value} by {by}"
            f" key {run.tags.get('dagster/run_key', '-')} at {record.create_timestamp:%H:%M:%S}")

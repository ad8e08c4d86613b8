"""From arrivals to run requests, shared by the S3 and SQS sensors.

For each recording: skip it if its status is final, treat it as running if a run of
its current attempt exists, otherwise claim it in the status table (only one claimant
wins, whichever sensor or delivery it is) and request the run. `run_key` is the
recording id (with `#<attempt>` for retries), so Dagster itself also refuses a second
run from the same sensor.
"""

from dataclasses import dataclass, field

from dagster import DagsterInstance, RunRequest, RunsFilter

from ..assets.recording import UPLOAD_KEY_TAG
from ..domain.keys import UploadKey
from ..partitions import recordings
from ..resources.tracker import ProcessingTracker, is_terminal

RECORDING_TAG = "vomage/recording_id"
ATTEMPT_TAG = "vomage/attempt"

REQUESTED = "requested"  # a run is requested in this tick
RUNNING = "running"  # a run of the current attempt already exists
FINAL = "final"  # complete or failed
CLAIMED = "claimed"  # another sensor or tick claimed it moments ago; look again later


def run_key(recording_id: str, attempt: int) -> str:
    return recording_id if attempt == 1 else f"{recording_id}#{attempt}"


def run_exists(instance: DagsterInstance, recording_id: str, attempt: int) -> bool:
    records = instance.get_run_records(
        filters=RunsFilter(tags={RECORDING_TAG: recording_id, ATTEMPT_TAG: str(attempt)}), limit=1)
    return bool(records)


@dataclass
class Plan:
    run_requests: list[RunRequest] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # recording id → decision

    def partition_requests(self) -> list:
        keys = [r.partition_key for r in self.run_requests]
        return [recordings.build_add_request(keys)] if keys else []


def plan_runs(instance: DagsterInstance, tracker: ProcessingTracker, uploads: list[UploadKey]) -> Plan:
    plan = Plan()
    unique = {u.recording_id: u for u in uploads}
    statuses = tracker.status.get_many(list(unique)) if unique else {}
    for rid, upload in unique.items():
        item = statuses.get(rid)
        if item is None:
            tracker.register(rid, upload.key)
            item = tracker.status.get(rid) or {}
        if is_terminal(item):
            plan.decisions[rid] = FINAL
            continue
        attempt = int(item.get("attempt", 1))
        if run_exists(instance, rid, attempt):
            plan.decisions[rid] = RUNNING
        elif tracker.status.claim_run(rid, attempt):
            plan.decisions[rid] = REQUESTED
            plan.run_requests.append(RunRequest(
                run_key=run_key(rid, attempt), partition_key=rid,
                tags={UPLOAD_KEY_TAG: upload.key, RECORDING_TAG: rid, ATTEMPT_TAG: str(attempt)}))
        else:
            plan.decisions[rid] = CLAIMED
    return plan

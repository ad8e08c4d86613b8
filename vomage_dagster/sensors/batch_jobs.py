"""Follow Bedrock batch jobs to their end and ingest what they wrote.

A pending manifest lists a day's jobs. Once every job is in a terminal state
(Completed, PartiallyCompleted, Failed, Stopped, Expired), the `.jsonl.out` files of the
jobs that produced any are parsed (per-record errors kept), records of jobs that
produced nothing are reported as errors, the results are written once, and the
`mood_reprocessed_results` partition is materialized.
"""

import json

from dagster import AssetMaterialization, SensorEvaluationContext, SensorResult, SkipReason, sensor

from vomage_dagster.assets.reprocessing import results_key, write_results
from vomage_dagster.domain import batch
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.sensors import DEFAULT_STATUS

MANIFESTS_PREFIX = "batch/"


@sensor(minimum_interval_seconds=30, default_status=DEFAULT_STATUS,
        description="Bedrock batch jobs → reprocessed results when they end.")
def batch_job_sensor(context: SensorEvaluationContext, store: ObjectStore,
                     batch_inference: BatchInference) -> SensorResult:
    events = []
    for obj in store.list(MANIFESTS_PREFIX):
        if not obj.key.endswith("/jobs.json"):
            continue
        manifest = store.get_json(obj.key)
        if manifest["state"] != "pending":
            continue
        statuses = {j["job_arn"]: batch_inference.describe(j["job_arn"])["status"] for j in manifest["jobs"]}
        if not all(s in batch.TERMINAL_STATUSES for s in statuses.values()):
            continue
        results: list[batch.BatchResult] = []
        for job in manifest["jobs"]:
            status = statuses[job["job_arn"]]
            out_key = BatchInference.output_key(job["output_prefix"], job["job_arn"], job["input_key"])
            if status in ("Completed", "PartiallyCompleted") and store.exists(out_key):
                # A manifest from before model ids were recorded came from a Claude job.
                model_id = manifest.get("model_id", "anthropic.claude-3-haiku-20240307-v1:0")
                results += batch.parse_output(store.get_bytes(out_key), model_id)
            else:
                for line in store.get_bytes(job["input_key"]).decode("utf-8").splitlines():
                    if line.strip():
                        rid = json.loads(line)["recordId"]
                        results.append(batch.BatchResult(rid, None, f"batch job {status}"))
        key = results_key(manifest["version"], manifest["day"])
        write_results(store, key, results, manifest["version"])
        store.put_json(obj.key, {**manifest, "state": "done", "statuses": statuses})
        errors = sum(1 for r in results if r.error)
        context.log.info(f"{manifest['version']} {manifest['day']}: {len(results)} results, {errors} errors")
        events.append(AssetMaterialization(
            "mood_reprocessed_results", partition=manifest["day"],
            metadata={"version": manifest["version"], "records": len(results), "errors": errors,
                      "job_statuses": ", ".join(sorted(set(statuses.values()))),
                      "results": store.uri(key)}))
    if not events:
        return SensorResult(skip_reason=SkipReason("no batch job finished"))
    return SensorResult(asset_events=events)

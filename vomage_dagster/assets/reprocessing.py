"""Batch reprocessing: a day's transcripts re-analysed with a named prompt/model version.

Fewer than `min_batch_records` transcripts: on-demand calls, results written at once.
Otherwise: JSONL inputs (split to the batch quotas) and Bedrock batch jobs; the
`batch_job_sensor` follows them and writes the results. Results live under
`reprocessed/<version>/date=<day>/` and are never overwritten: a second run of the same
version and day fails and says so.
"""

import json

from dagster import AssetExecutionContext, AssetSpec, Config, Failure, MaterializeResult, asset

from vomage_dagster.assets.partitions import days
from vomage_dagster.domain import batch, models, prompts
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.hashing import sha256_text
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.store import ObjectStore

GROUP = "daily"


class ReprocessConfig(Config):
    version: str = f"{prompts.PROMPT_VERSION}-reprocess"
    # Empty: the mood model of the settings (analyzer resource). A Claude or Nova text model.
    model_id: str = ""
    min_batch_records: int = batch.MIN_RECORDS_PER_JOB
    max_batch_records: int = batch.MAX_RECORDS_PER_JOB


def results_key(version: str, day: str) -> str:
    return f"reprocessed/{version}/date={day}/results.jsonl"


def manifest_key(version: str, day: str) -> str:
    return f"batch/{version}/date={day}/jobs.json"


def write_results(store: ObjectStore, key: str, results: list[batch.BatchResult], version: str) -> None:
    lines = [json.dumps({"recording_id": r.record_id, "version": version, "mood": r.mood,
                         "error": r.error}, ensure_ascii=False) for r in results]
    store.put_bytes(key, ("\n".join(lines) + "\n").encode("utf-8"), "application/x-ndjson")


@asset(partitions_def=days, group_name=GROUP, kinds={"bedrock"},
       description="Re-analyse the day's transcripts with a named prompt/model version.")
def mood_reprocessed(context: AssetExecutionContext, config: ReprocessConfig, records: RecordsTable,
                     store: ObjectStore, analyzer: MoodAnalyzer, batch_inference: BatchInference
                     ) -> MaterializeResult:
    day = context.partition_key
    out_key = results_key(config.version, day)
    if store.exists(out_key) or store.exists(manifest_key(config.version, day)):
        raise Failure(f"version {config.version!r} of {day} exists already; choose a new version")
    model_id = config.model_id or analyzer.model_id
    try:
        models.family(model_id)
    except ValueError as exc:
        raise Failure(str(exc)) from exc
    items = [(r["recording_id"], r["transcript"], r["language"]) for r in records.for_day(day)]
    chunks = batch.split(len(items), config.max_batch_records, config.min_batch_records)
    if not chunks:
        model = MoodAnalyzer(model_id=model_id, region_name=analyzer.region_name,
                             endpoint_url=analyzer.endpoint_url)
        results = []
        for rid, text, language in items:
            try:
                mood, _usage = model.analyze(text, language)
                results.append(batch.BatchResult(rid, mood.as_dict(), None))
            except ProcessingError as exc:
                results.append(batch.BatchResult(rid, None, str(exc)))
        write_results(store, out_key, results, config.version)
        return MaterializeResult(metadata={
            "mode": "on-demand", "model": model_id, "records": len(items),
            "errors": sum(1 for r in results if r.error), "results": store.uri(out_key)})
    jobs = []
    prefix = f"batch/{config.version}/date={day}"
    for n, (start, end) in enumerate(chunks):
        input_key = f"{prefix}/input-{n:03d}.jsonl"
        store.put_bytes(input_key, batch.input_lines(items[start:end], model_id), "application/x-ndjson")
        token = sha256_text(config.version, day, str(n))[:32]
        arn = batch_inference.submit(f"vomage-{day}-{n:03d}-{token[:8]}", token, model_id,
                                     store.uri(input_key), store.uri(f"{prefix}/output/"))
        jobs.append({"job_arn": arn, "input_key": input_key, "output_prefix": f"{prefix}/output",
                     "records": end - start})
    store.put_json(manifest_key(config.version, day), {
        "version": config.version, "day": day, "model_id": model_id, "state": "pending", "jobs": jobs})
    return MaterializeResult(metadata={"mode": "batch", "model": model_id, "records": len(items),
                                       "jobs": len(jobs),
                                       "manifest": store.uri(manifest_key(config.version, day))})


mood_reprocessed_results = AssetSpec(
    "mood_reprocessed_results", partitions_def=days, group_name=GROUP, deps=[mood_reprocessed],
    description="Results of the day's batch jobs, written by batch_job_sensor when the jobs end.")

ASSETS = [mood_reprocessed, mood_reprocessed_results]

"""Batch and operations work against the local stack: daily table and report, batch
reprocessing (on-demand and Bedrock batch), cache warming, metric export, retention."""

import datetime as dt
import json
import time

import pytest
from botocore.stub import ANY, Stubber
from dagster import DagsterInstance, build_sensor_context, materialize
from helpers import own_and_move

from vomage_dagster.assets import daily, recording, reprocessing
from vomage_dagster.assets.partitions import recordings
from vomage_dagster.domain import tables
from vomage_dagster.jobs import prune_recording_partitions
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.operations import cache_warming, metrics, retention
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.batch import BatchInference
from vomage_dagster.sensors.batch_jobs import batch_job_sensor

ORDER = ["raw_recording", "transcript", "recording_context", "mood", "mood_image", "published_record"]
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def processed(settings, resources, instance, samples):
    """Three samples processed today; their recording ids."""
    rids = []
    for name in ("en_joy", "zh_sad", "en_angry"):
        item = samples[name]
        rid = upload_file(settings, item["path"], "ops-user", lat=item.get("lat"), lon=item.get("lon"),
                          tz=item.get("tz"), lang=item.get("lang"))
        instance.add_dynamic_partitions(recordings.name, [rid])
        for asset in ORDER:
            materialize(recording.ASSETS, selection=[asset], partition_key=rid, instance=instance,
                        resources=resources)
        rids.append(rid)
    return rids


def test_daily_table_and_report(processed, resources, instance):
    result = materialize(daily.ASSETS, partition_key=TODAY, instance=instance, resources=resources)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    table = tables.read_parquet(resources["store"].get_bytes(daily.table_key(TODAY)))
    rows = {r["recording_id"]: r for r in table.to_pylist()}
    assert set(processed) <= set(rows)
    assert rows[processed[0]]["primary_emotion"] == "joy"
    assert rows[processed[1]]["language"] == "zh-CN"
    report = resources["store"].get_json(f"reports/mood/date={TODAY}/report.json")
    assert report["records"] == table.num_rows
    assert sum(v["records"] for v in report["by_emotion"].values()) == table.num_rows
    assert resources["store"].get_bytes(f"reports/mood/date={TODAY}/chart.png").startswith(b"\x89PNG")
    cost = report["cost"]
    assert cost["total_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows.values()), abs=1e-5)
    assert 0 < cost["per_recording_p50_usd"] <= cost["per_recording_p95_usd"]
    assert set(cost["share"]) == {"transcript", "mood", "mood_image"}


def test_reprocessing_on_demand_keeps_versions(processed, resources, instance):
    config = {"ops": {"mood_reprocessed": {"config": {"version": "test-on-demand"}}}}
    assets = reprocessing.ASSETS[:1]
    assert materialize(assets, partition_key=TODAY, instance=instance, resources=resources,
                       run_config=config).success
    lines = resources["store"].get_bytes(reprocessing.results_key("test-on-demand", TODAY)).decode().splitlines()
    results = {json.loads(line)["recording_id"]: json.loads(line) for line in lines}
    assert set(processed) <= set(results)
    assert results[processed[0]]["mood"]["primary_emotion"] == "joy"
    again = materialize(assets, partition_key=TODAY, instance=instance, resources=resources,
                        run_config=config, raise_on_error=False)
    assert not again.success  # never silently overwritten


def test_reprocessing_through_a_bedrock_batch_job(processed, resources, instance):
    version = f"test-batch-{int(time.time())}"
    config = {"ops": {"mood_reprocessed": {"config": {"version": version, "min_batch_records": 2}}}}
    result = materialize(reprocessing.ASSETS[:1], partition_key=TODAY, instance=instance,
                         resources=resources, run_config=config)
    meta = result.asset_materializations_for_node("mood_reprocessed")[0].metadata
    assert meta["mode"].value == "batch" and meta["jobs"].value == 1
    events = []
    for _ in range(240):  # the local job runs beside everything else the suite runs
        with build_sensor_context(instance=instance, resources={
                "store": resources["store"], "batch_inference": resources["batch_inference"]}) as ctx:
            events = [e for e in batch_job_sensor(ctx).asset_events if e.metadata["version"].value == version]
        if events:  # (other tests' batch jobs may finish meanwhile: only ours counts)
            break
        time.sleep(0.5)
    (event,) = events
    assert event.partition == TODAY and event.metadata["errors"].value == 0
    lines = resources["store"].get_bytes(reprocessing.results_key(version, TODAY)).decode().splitlines()
    assert set(processed) <= {json.loads(line)["recording_id"] for line in lines}
    manifest = resources["store"].get_json(reprocessing.manifest_key(version, TODAY))
    assert manifest["state"] == "done" and set(manifest["statuses"].values()) == {"Completed"}


def test_batch_job_requests_are_shaped_for_bedrock(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    batch = BatchInference(role_arn="arn:aws:iam::123456789012:role/vomage-bedrock-batch",
                           endpoint_url="https://stubbed.invalid")
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123"
    with Stubber(batch.bedrock) as stub:
        stub.add_response("create_model_invocation_job", {"jobArn": arn}, {
            "jobName": "j", "clientRequestToken": "tok", "roleArn": ANY, "modelId": "m",
            "modelInvocationType": "InvokeModel",
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/in.jsonl", "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/out/"}}})
        stub.add_response("get_model_invocation_job", {
            "jobArn": arn, "jobName": "j", "modelId": "m", "roleArn": "r", "status": "PartiallyCompleted",
            "submitTime": dt.datetime(2026, 11, 29), "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/in.jsonl"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/out/"}}}, {"jobIdentifier": arn})
        assert batch.submit("j", "tok", "m", "s3://b/in.jsonl", "s3://b/out/") == arn
        assert batch.describe(arn)["status"] == "PartiallyCompleted"
    assert BatchInference.output_key("batch/v/out", arn, "batch/v/input-000.jsonl") == \
        "batch/v/out/abc123/input-000.jsonl.out"


def test_cache_warming_restores_every_model_answer(processed, settings, resources, instance, samples,
                                                   model_calls):
    resources["cache"].redis.flushdb()
    warmed = cache_warming.warm(resources["records"], resources["store"], resources["cache"],
                                cache_warming.recent_days(0))
    assert warmed["transcribe"] >= 3 and warmed["analysis"] >= 3 and warmed["image"] >= 3
    before = model_calls()
    item = samples["zh_sad"]
    rid = upload_file(settings, item["path"], "ops-again", lat=item["lat"], lon=item["lon"],
                      tz=item["tz"], lang=item["lang"])
    instance.add_dynamic_partitions(recordings.name, [rid])
    for asset in ORDER:
        materialize(recording.ASSETS, selection=[asset], partition_key=rid, instance=instance,
                    resources=resources)
    # The words and the mood come from the warmed cache; the picture is this recording's
    # own (its seed, its user), so it is painted: the one model call.
    after = model_calls()
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {"image": 1}
    hits = resources["records"].get(rid)["cache_hits"]
    assert hits["transcript"] is True and hits["mood"] is True and hits["mood_image"] is False


def test_metric_export_once_per_window_without_ids(processed, settings, resources):
    record = resources["records"].get(processed[0])
    start = metrics.window_start(dt.datetime.fromisoformat(record["published_at"]))
    args = (resources["records"], resources["tracker"].status, resources["queue"], resources["store"], start)
    first = metrics.export_window(*args)
    assert first["sent"] is True and first["data_points"] >= 4
    assert metrics.export_window(*args)["sent"] is False
    cloudwatch = client("cloudwatch", settings.region)
    listed = cloudwatch.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"UploadToPublished", "VoiceProcessingDuration", "RecordsProcessed", "QueueDepth",
            "ExportHeartbeat"} <= names
    dims = {d["Name"] for m in listed for d in m.get("Dimensions", [])}
    assert dims <= {"ProcessingStage", "ErrorCode", "Route"}  # Route: the live view's route templates
    # What the users waited for, exactly the records' own values.
    published = metrics.published_in(resources["records"], start)
    waits = cloudwatch.get_metric_statistics(
        Namespace=metrics.NAMESPACE, MetricName="UploadToPublished",
        StartTime=start - dt.timedelta(minutes=5), EndTime=start + dt.timedelta(minutes=10),
        Period=300, Statistics=["SampleCount", "Sum", "Maximum"])["Datapoints"]
    assert sum(p["SampleCount"] for p in waits) == len(published)
    assert sum(p["Sum"] for p in waits) == pytest.approx(sum(float(r["upload_to_published_s"]) for r in published),
                                                         abs=1e-3)
    stats = cloudwatch.get_metric_statistics(
        Namespace=metrics.NAMESPACE, MetricName="VoiceProcessingDuration",
        Dimensions=[{"Name": "ProcessingStage", "Value": "transcription"}],
        StartTime=start - dt.timedelta(minutes=5), EndTime=start + dt.timedelta(minutes=10),
        Period=300, Statistics=["SampleCount", "Maximum"])
    assert sum(p["SampleCount"] for p in stats["Datapoints"]) >= 1
    # Vomage/Cost: the estimated cost per Stage and the cache's saving, no ids either.
    cost = cloudwatch.list_metrics(Namespace=metrics.COST_NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in cost} == {"EstimatedCost", "CacheSavings"}
    assert {d["Name"] for m in cost for d in m.get("Dimensions", [])} == {"Stage"}
    assert {d["Value"] for m in cost for d in m.get("Dimensions", [])} == {
        "transcription", "analysis", "generation", "total"}
    total = cloudwatch.get_metric_statistics(
        Namespace=metrics.COST_NAMESPACE, MetricName="EstimatedCost",
        Dimensions=[{"Name": "Stage", "Value": "total"}],
        StartTime=start - dt.timedelta(minutes=5), EndTime=start + dt.timedelta(minutes=10),
        Period=300, Statistics=["Sum"])
    assert sum(p["Sum"] for p in total["Datapoints"]) == pytest.approx(first["cost_usd"], abs=1e-5)
    assert first["cost_usd"] > 0
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert alarms["vomage-upload-to-published-p90"]["Threshold"] == 15.0
    assert alarms["vomage-upload-to-published-p90"]["MetricName"] == "UploadToPublished"
    assert alarms["vomage-error-rate-high"]["Threshold"] == 5.0
    assert alarms["vomage-metric-export-stopped"]["TreatMissingData"] == "breaching"


def test_errors_are_counted_by_code_and_ratings_become_satisfaction():
    start = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)
    failed = [{"error": {"code": "undecodable"}}] * 3 + [{"error": {"code": "model_unavailable"}},
                                                          {"error": {"code": "Not A Code; drop table"}}]
    data = {d["Dimensions"][0]["Value"]: d for d in metrics.collect_waits([], failed, start)
            if d["MetricName"] == "Errors"}
    assert data["undecodable"]["Values"] == [3.0] and data["other"]["Values"] == [1.0]
    streamed = [{"upload_to_published_s": 6.0, "upload_to_mood_s": 1.4, "transcript_source": "streaming"},
                {"upload_to_published_s": 18.0, "upload_to_mood_s": 12.0, "transcript_source": "batch"}]
    waits = {d["MetricName"]: d for d in metrics.collect_waits(streamed, [], start)}
    assert waits["UploadToPublished"]["Values"] == [6.0, 18.0]
    assert waits["SpeechEndToMood"]["Values"] == [1.4]  # only where the words were streamed
    (score,) = metrics.collect_ux([{"rating": "up"}, {"rating": "up"}, {"rating": "down"}], start)
    assert score["MetricName"] == "UserSatisfactionScore" and score["Values"] == [0.0, 1.0]
    assert score["Counts"] == [1.0, 2.0]


def test_on_aws_the_export_leaves_the_alarms_to_the_template(settings, resources, monkeypatch):
    """Putting the alarms from the export would replace the template's, and their actions."""
    def refuse(_cloudwatch):
        raise AssertionError("alarms put by the metric export")

    monkeypatch.setattr(metrics, "ensure_alarms", refuse)
    result = metrics.export_window(resources["records"], resources["tracker"].status, resources["queue"],
                                   resources["store"], put_alarms=False)
    assert result["alarms"] == []


def test_retention_prunes_only_tabled_or_failed_partitions(processed, resources, instance, settings):
    from vomage_dagster.domain.errors import ProcessingError

    failed = "rec-ops-failed"
    resources["tracker"].register(failed, f"uploads/u/{failed}.m4a")
    resources["tracker"].fail(failed, ProcessingError("too_short", "x"))
    untabled = "rec-ops-untabled"
    resources["records"].put({**resources["records"].get(processed[0]), "recording_id": untabled,
                              "day": "2026-01-02", "created_at": "2026-01-02T00:00:00+00:00#x"})
    own_and_move(resources["tracker"], untabled, "transcribing", "analyzing", "generating", "complete")
    instance.add_dynamic_partitions(recordings.name, [failed, untabled])
    keys = processed + [failed, untabled]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    doomed = retention.prunable(keys, resources["tracker"].status, resources["records"],
                                resources["store"], keep_days=30, now=future)
    assert set(doomed) == set(processed) | {failed}  # today's table exists; 2026-01-02's does not
    assert retention.prunable(keys, resources["tracker"].status, resources["records"],
                              resources["store"], keep_days=30) == []
    result = prune_recording_partitions.execute_in_process(
        instance=instance, resources=resources,
        run_config={"ops": {"prune_partitions_op": {"config": {"keep_days": -1}}}})
    assert result.success
    left = set(instance.get_dynamic_partitions(recordings.name))
    assert untabled in left and not (set(processed) | {failed}) & left

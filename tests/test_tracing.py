"""One trace per recording: ids every process derives alike, the spans a run makes (every
stage, every AWS and Redis call) under the recording's root, the root agreeing with the
record, a failed recording's error code, a collector that is down costing nothing, and
`vomage trace`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.keys import new_recording_id
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.telemetry import ids, tracing, waterfall

STAGES = ("raw_recording", "transcript", "recording_context", "mood", "mood_image", "published_record")


def test_trace_ids_are_the_recordings_own_and_x_ray_compatible():
    rid = "rec-20261206221500-1a2b3c4d"
    trace = ids.trace_id(rid)
    assert trace == ids.trace_id(rid) and trace != ids.trace_id("rec-20261206221500-1a2b3c4e")
    epoch = int(dt.datetime(2026, 12, 6, 22, 15, tzinfo=dt.UTC).timestamp())
    assert trace >> 96 == epoch  # X-Ray reads the first 32 bits as the start's epoch second
    assert ids.xray_id(trace).startswith(f"1-{epoch:08x}-") and len(ids.xray_id(trace)) == 35
    assert ids.root_span_id(rid) == ids.root_span_id(rid) != 0
    # The head decision is the trace id's: every process makes the same one.
    many = [ids.trace_id(new_recording_id() + str(n)) for n in range(2000)]
    kept = sum(ids.sampled(t, 0.1) for t in many)
    assert 120 < kept < 280 and all(ids.sampled(t, 1.0) for t in many[:10])
    assert not any(ids.sampled(t, 0.0) for t in many[:10])


def test_new_recording_ids_carry_utc_time():
    rid = new_recording_id()
    stamped = dt.datetime.strptime(rid.split("-")[1], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamped).total_seconds()) < 5


def spans_of(local_stack, rid: str, wanted: set[str], timeout_s: float = 30) -> list[waterfall.Row]:
    """The recording's spans the receiver holds, once every name in `wanted` is there."""
    url = f"http://127.0.0.1:{local_stack['ports']['traces']}/v1/traces/{ids.trace_id(rid):032x}"
    deadline = time.monotonic() + timeout_s
    rows: list[waterfall.Row] = []
    while time.monotonic() < deadline:
        tracing.flush()
        with urllib.request.urlopen(url, timeout=5) as resp:
            found = json.loads(resp.read())["spans"]
        rows = [waterfall.Row(s["name"], s["span_id"], s["parent_id"], s["start_ns"], s["end_ns"], s["status"],
                              s["service"], s["attributes"]) for s in found]
        if wanted <= {r.name for r in rows}:
            return rows
        time.sleep(0.3)
    raise AssertionError(f"spans {sorted(wanted - {r.name for r in rows})} never arrived; got "
                         f"{sorted({r.name for r in rows})}")


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def process(instance, resources, settings, path, user: str) -> str:
    """Upload and materialize `path`, every model called: the model caches other tests
    filled (same audio, same words, same prompt) are emptied first."""
    import redis

    cache = redis.Redis.from_url(settings.redis_url)
    for kind in ("transcribe", "analysis", "image"):
        for key in cache.scan_iter(match=f"{kind}:*"):
            cache.delete(key)
    rid = upload_file(settings, path, user)
    resources["tracker"].register(rid, f"uploads/{user}/{rid}{path.suffix}")
    instance.add_dynamic_partitions(recordings.name, [rid])
    materialize(ASSETS, partition_key=rid, instance=instance, resources=resources, raise_on_error=False,
                tags={recording_tag(rid): "1"})
    return rid


def test_a_recording_is_one_trace_of_its_stages_and_calls_under_its_root(local_stack, instance, resources,
                                                                         settings, samples):
    rid = process(instance, resources, settings, samples["en_joy"]["path"], "trace-user")
    rows = spans_of(local_stack, rid, {"recording", "run", *STAGES})
    by_name = {r.name: r for r in rows}
    root = by_name["recording"]
    assert root.parent_id is None and root.span_id == f"{ids.root_span_id(rid):016x}"
    assert root.attributes["vomage.outcome"] == "complete" and root.status == "OK"
    assert by_name["run"].parent_id == root.span_id
    for stage in STAGES:
        assert by_name[stage].parent_id == by_name["run"].span_id, stage
        assert by_name[stage].attributes["vomage.stage"] == stage
    # Every call to AWS and Redis the stages made is a span under its stage.
    stage_ids = {by_name[s].span_id: s for s in STAGES}
    calls = [r for r in rows if r.name.split(".")[0] in ("S3", "DynamoDB", "Transcribe", "Bedrock Runtime",
                                                         "EventBridge", "Redis")]
    made = {r.name for r in calls}
    assert {"S3.PutObject", "S3.GetObject", "DynamoDB.UpdateItem", "Transcribe.StartTranscriptionJob",
            "Bedrock Runtime.Converse", "Bedrock Runtime.InvokeModel", "EventBridge.PutEvents"} <= made, made
    assert any(n.startswith("Redis.") for n in made), made
    assert all(c.parent_id in stage_ids for c in calls), [c.name for c in calls if c.parent_id not in stage_ids]
    assert stage_ids[next(c.parent_id for c in calls if c.name == "Bedrock Runtime.Converse")] == "mood"
    # No words and no user in a span.
    text = json.dumps([r.attributes for r in rows])
    assert "trace-user" not in text and "happy" not in text.lower()
    # The root is the recording's life from the upload to the record, as the record says.
    record = resources["records"].get(rid)
    assert root.seconds == pytest.approx(float(record["upload_to_published_s"]), rel=0.05)


def test_a_failed_recordings_trace_carries_its_error_code(local_stack, instance, resources, settings, tmp_path):
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00" * 2048)
    rid = process(instance, resources, settings, bad, "trace-bad")
    rows = spans_of(local_stack, rid, {"recording", "raw_recording"})
    by_name = {r.name: r for r in rows}
    assert by_name["recording"].status == "ERROR"
    assert by_name["recording"].attributes["vomage.error_code"] == "undecodable"
    assert by_name["raw_recording"].status == "ERROR"
    assert by_name["raw_recording"].attributes["vomage.error_code"] == "undecodable"


def test_vomage_trace_prints_the_waterfall(local_stack, instance, resources, settings, samples):
    rid = process(instance, resources, settings, samples["en_neutral"]["path"], "trace-cli")
    spans_of(local_stack, rid, {"recording", "published_record"})
    vomage = str(Path(sys.executable).parent / "vomage")
    out = subprocess.run([vomage, "trace", rid], capture_output=True, text=True, timeout=60, check=True).stdout
    assert ids.xray_id(ids.trace_id(rid)) in out
    lines = out.splitlines()
    assert any(line.split()[-2:] == ["recording", "vomage-pytest"] or "recording" in line for line in lines)
    assert any("└ mood" in line for line in lines) and any("Bedrock Runtime.Converse" in line for line in lines)
    found = json.loads(subprocess.run([vomage, "trace", rid, "--json"], capture_output=True, text=True, timeout=60,
                                      check=True).stdout)
    assert {"recording", "run", "mood"} <= {s["name"] for s in found["spans"]}


def test_a_collector_that_is_down_costs_a_recording_nothing(private_stack, samples):
    """The collector stopped: the recording completes, no call waits on the export (the
    figures, with the collector up and down, are in the tracing benchmark)."""
    from vomage_dagster.local.aws import stack
    from vomage_dagster.resources.build import build_resources
    from vomage_dagster.settings import load_settings

    settings = load_settings()
    stack.stop_service(settings, "traces")
    resources = build_resources(settings)
    with DagsterInstance.ephemeral() as inst:
        started = time.monotonic()
        rid = process(inst, resources, settings, samples["en_neutral"]["path"], "trace-down")
        took = time.monotonic() - started
    assert resources["tracker"].status.get(rid)["stage"] == "complete"
    print(f"\nrecording with the collector down: {took:.2f} s")


def test_the_ingest_backlog_is_reported_every_minute_even_when_idle():
    """A minute with uploads reports the oldest one's age, an idle minute 0: a missing
    minute then means the ingest stopped, which its alarm treats as breaching."""
    import boto3
    from botocore.stub import ANY, Stubber

    from vomage_dagster.telemetry.minutely import PERFORMANCE, Minutely

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
    now = [0.0]
    backlog = Minutely(PERFORMANCE, "IngestBacklogAge", "Seconds", lambda: cloudwatch, clock=lambda: now[0])
    with Stubber(cloudwatch) as stub:
        for value in (42.5, 0.0):
            stub.add_response("put_metric_data", {}, {"Namespace": PERFORMANCE, "MetricData": [
                {"MetricName": "IngestBacklogAge", "Unit": "Seconds", "Value": value, "Timestamp": ANY}]})
        backlog.observe(3.0)
        backlog.observe(42.5)
        assert backlog.tick() is False  # not a minute yet
        now[0] = 61.0
        assert backlog.tick() is True
        now[0] = 122.0
        assert backlog.tick() is True  # nothing observed: 0, still reported
        stub.assert_no_pending_responses()
    # CloudWatch refusing costs the ingest nothing.
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("put_metric_data", "Throttling")
        now[0] = 200.0
        assert backlog.tick() is False


def test_on_aws_spans_go_to_x_ray_signed_with_the_tasks_credentials(monkeypatch):
    """The default endpoint on AWS is X-Ray's OTLP endpoint, and every export to it carries a
    SigV4 signature for the `xray` service over the body as sent."""
    import requests

    from vomage_dagster.settings import load_settings
    from vomage_dagster.telemetry.export import SigV4

    aws = load_settings({"VOMAGE_ENV": "aws", "AWS_DEFAULT_REGION": "eu-west-1", "REDIS_URL": "redis://r:6379/0"})
    assert aws.traces_endpoint == "https://xray.eu-west-1.amazonaws.com/v1/traces" and aws.traces_signed
    assert aws.trace_sample_ratio == 0.1
    off = load_settings({"VOMAGE_ENV": "aws", "VOMAGE_TRACES_ENDPOINT": "off", "REDIS_URL": "redis://r:6379/0"})
    assert off.traces_endpoint == ""
    assert not load_settings({"VOMAGE_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}).traces_signed

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    body = b"\x0a\x02spans"
    request = requests.Request("POST", aws.traces_endpoint, data=body,
                               headers={"Content-Type": "application/x-protobuf"}).prepare()
    signed = SigV4("eu-west-1")(request)
    auth = signed.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/xray/aws4_request" in auth and "content-type" in auth
    assert signed.headers["X-Amz-Security-Token"] == "session-token" and signed.headers["X-Amz-Date"]
    assert signed.body == body

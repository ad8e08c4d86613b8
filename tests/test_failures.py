"""Failure handling in-process against the local stack: crashed runs, Redis down,
DynamoDB throttling. (The daemon-level faults are in test_faults_end_to_end.py.)"""

import json

import pytest
from botocore.awsrequest import AWSResponse
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, materialize
from dagster._core.storage.tags import WILL_RETRY_TAG

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.aws import dynamodb_table
from vomage_dagster.resources.cache import Cache, cache_errors
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.sensors.run_watchdog import recording_failure_sensor

ORDER = ["raw_recording", "transcript", "recording_context", "mood", "mood_image", "published_record"]


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_chain(instance, resources, rid):
    instance.add_dynamic_partitions(recordings.name, [rid])
    return [materialize(ASSETS, selection=[name], partition_key=rid, instance=instance,
                        resources=resources, raise_on_error=False) for name in ORDER]


def test_a_crashed_run_leaves_the_recording_failed_and_retryable(instance, resources, settings):
    """A run that failed where no asset could record it (simulated: the status still says
    'transcribing'): the run-failure sensor marks it failed, once — unless the instance
    is about to retry the run."""
    rid = "rec-crashed-run"
    resources["tracker"].register(rid, f"uploads/u/{rid}.m4a")  # no such object: the run fails
    instance.add_dynamic_partitions(recordings.name, [rid])
    result = materialize(ASSETS, selection=["raw_recording"], partition_key=rid, instance=instance,
                         resources=resources, raise_on_error=False)
    assert not result.success
    status = resources["tracker"].status
    status.table.put_item(Item={**status.get(rid), "stage": "transcribing", "stage_rank": 1,
                                "error": None})  # as if the worker died before recording it
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.PIPELINE_FAILURE)

    def report_failure(will_retry: str) -> None:
        instance.add_run_tags(result.run_id, {WILL_RETRY_TAG: will_retry})
        with build_run_status_sensor_context(
                sensor_name=recording_failure_sensor.name, dagster_event=failure,
                dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id),
                resources={"tracker": resources["tracker"], "queue": resources["queue"]}) as ctx:
            recording_failure_sensor(ctx.for_run_failure())

    # The instance will retry the run (run retries on): the retry must be free to advance it.
    report_failure("true")
    assert status.get(rid)["stage"] == "transcribing"
    # The run was killed between writing the record and marking the recording complete:
    # failing the recording takes the record back (failed means no published post).
    resources["records"].put({"recording_id": rid, "user_id": "u", "recorded_at": "2026-12-01T10:00:00+00:00",
                              "created_at": f"2026-12-01T10:00:00+00:00#{rid}"})
    report_failure("false")  # the last attempt failed too
    assert resources["records"].get(rid) is None
    item = status.get(rid)
    assert item["stage"] == "failed"
    assert item["error"]["code"] == "run_failed" and item["error"]["retryable"] is True
    # Final now: a second failure report changes nothing and announces nothing.
    assert resources["tracker"].fail(rid, ProcessingError("run_failed", "again", True)) is False


def test_a_run_that_failed_before_owning_its_recordings_queues_them_again(instance, resources, queues):
    """A run that never started (the daemon killed while launching it; run monitoring fails
    it after its start timeout) never owned its recordings: they are queued again through
    the ingest, not failed, three times at most."""
    from vomage_dagster.definitions import defs
    from vomage_dagster.domain.keys import new_recording_id
    from vomage_dagster.domain.run_tags import recording_tag

    tracker = resources["tracker"]
    rids = [new_recording_id() for _ in range(2)]
    for rid in rids:
        tracker.register(rid, f"uploads/u/{rid}.m4a")
    run = instance.create_run_for_job(defs.resolve_job_def("process_recording"),
                                      tags={recording_tag(r): "1" for r in rids})

    def fail_run() -> None:
        instance.report_run_failed(instance.get_run_by_id(run.run_id))
        failure = next(e.dagster_event for e in instance.all_logs(run.run_id)
                       if e.dagster_event and e.dagster_event.event_type == DagsterEventType.PIPELINE_FAILURE)
        with build_run_status_sensor_context(
                sensor_name=recording_failure_sensor.name, dagster_event=failure, dagster_instance=instance,
                dagster_run=instance.get_run_by_id(run.run_id),
                resources={"tracker": tracker, "queue": queues}) as ctx:
            recording_failure_sensor(ctx.for_run_failure())

    fail_run()
    received = queues.receive(10)
    queues.delete(received)
    assert sorted(json.loads(m.body)["recording_id"] for m in received) == sorted(rids)
    assert all(tracker.status.get(r)["stage"] == "uploaded" and tracker.status.get(r)["requeues"] == 1
               for r in rids)
    for rid in rids:  # queued again as often as allowed: the next failure fails them
        tracker.status.table.update_item(Key={"recording_id": rid}, UpdateExpression="SET requeues = :n",
                                         ExpressionAttributeValues={":n": 3})
    fail_run()
    assert all(tracker.status.get(r)["error"]["code"] == "run_failed" for r in rids)


def test_with_redis_down_processing_completes_without_cache(instance, resources, settings, samples):
    dead = Cache(redis_url="redis://127.0.0.1:1/0", socket_timeout_s=0.2)
    tracker = ProcessingTracker(status=resources["tracker"].status, cache=dead,
                                events=resources["events"], records=resources["records"])
    degraded = {**resources, "cache": dead, "tracker": tracker}
    item = samples["en_neutral"]
    rid = upload_file(settings, item["path"], "no-redis", tz=item["tz"])
    before = cache_errors()
    results = run_chain(instance, degraded, rid)
    assert all(r.success for r in results)
    assert resources["tracker"].status.get(rid)["stage"] == "complete"
    assert resources["records"].get(rid)["image_key"].endswith("image.png")
    assert cache_errors() > before


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def test_throttled_status_table_is_retried(instance, resources, settings, samples):
    """DynamoDB answers ThrottlingException to the first writes: botocore's standard retry
    mode backs off with jitter and the recording still completes."""
    table = dynamodb_table(settings.status_table, settings.region)
    state = {"left": 3, "throttled": 0}

    def throttle(request, **_):
        if state["left"] > 0:
            state["left"] -= 1
            state["throttled"] += 1
            body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
            return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException",
                                                  "Content-Type": "application/x-amz-json-1.0"}, _Raw(body))
        return None

    events = table.meta.client.meta.events
    events.register("before-send.dynamodb.UpdateItem", throttle)
    try:
        item = samples["en_angry"]
        rid = upload_file(settings, item["path"], "throttled", tz=item["tz"])
        results = run_chain(instance, resources, rid)
    finally:
        events.unregister("before-send.dynamodb.UpdateItem", throttle)
    assert state["throttled"] == 3
    assert all(r.success for r in results)
    assert resources["tracker"].status.get(rid)["stage"] == "complete"


def test_status_changes_are_published_on_the_recording_channel(resources):
    pubsub = resources["cache"].redis.pubsub()
    pubsub.subscribe("status:rec-pubsub")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    tracker = resources["tracker"]
    tracker.register("rec-pubsub", "uploads/u/rec-pubsub.m4a")
    tracker.own("rec-pubsub", 1, "run-pubsub")
    tracker.advance("rec-pubsub", "transcribing", 1, "run-pubsub")
    seen = [json.loads(pubsub.get_message(timeout=2)["data"]) for _ in range(3)]
    assert [(m["stage"], m.get("owner")) for m in seen] == [
        ("uploaded", None), ("uploaded", "run-pubsub"), ("transcribing", "run-pubsub")]
    pubsub.close()


def test_a_retry_after_an_image_failure_does_not_transcribe_again(instance, resources, settings, samples,
                                                                  model_calls):
    """The chain is one step, so a retry runs every stage again: the stages before the one
    that failed answer from the cache (keyed by audio hash, transcript, prompt), and the
    speech and mood models are not called a second time."""
    from vomage_dagster.domain.audio import SAMPLE_RATE, decode
    from vomage_dagster.domain.run_tags import recording_tag
    from vomage_dagster.resources.painter import ImagePainter
    from vomage_dagster.testing.audio_files import encode

    path = settings.state_dir / "retry-granularity.wav"
    pcm = decode(samples["ja_tired"]["path"].read_bytes()).samples
    path.write_bytes(encode(pcm * 0.93, SAMPLE_RATE, "wav"))  # audio no other test has sent
    rid = upload_file(settings, path, "retry-user")
    resources["tracker"].register(rid, f"uploads/retry-user/{rid}.wav")  # as the ingest does
    instance.add_dynamic_partitions(recordings.name, [rid])
    unreachable = ImagePainter(model_id="stability.stable-image-core-v1:9", endpoint_url="http://127.0.0.1:9")
    first = materialize(ASSETS, partition_key=rid, instance=instance, raise_on_error=False,
                        resources={**resources, "painter": unreachable}, tags={recording_tag(rid): "1"})
    assert not first.success
    status = resources["tracker"].status
    assert status.get(rid)["stage"] == "failed" and status.get(rid)["error"]["retryable"] is True
    made = {e.asset_key.path[-1] for e in first.asset_materializations_for_node("recording_chain")}
    assert made == {"raw_recording", "transcript", "recording_context", "mood"}

    before = model_calls()
    assert resources["tracker"].retry(rid) == 2
    again = materialize(ASSETS, partition_key=rid, instance=instance, resources=resources,
                        tags={recording_tag(rid): "2"})
    assert again.success and status.get(rid)["stage"] == "complete"
    after = model_calls()
    assert after["transcribe"] == before["transcribe"] and after["analysis"] == before["analysis"]
    hits = {e.asset_key.path[-1]: e.metadata["cache_hit"].value
            for e in again.asset_materializations_for_node("recording_chain") if "cache_hit" in e.metadata}
    assert hits["transcript"] is True and hits["mood"] is True

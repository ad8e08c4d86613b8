"""The SQS sensor against the real local queue: at-least-once done right.

Each test starts with both queues drained (the `queues` and `tick` fixtures, conftest.py);
S3 notifications come from the bucket's real notification configuration (moto delivers
them to the queue).
"""

import json
import time

import pytest
from dagster import DagsterInstance, materialize

from vomage_dagster import cli
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.local.demo import upload_file
from vomage_dagster.partitions import recordings
from vomage_dagster.run_tags import ATTEMPT_TAG, RECORDING_TAG


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def start_run(instance, resources, request):
    """What the daemon does with a run request: a run tagged as requested (raw_recording only)."""
    instance.add_dynamic_partitions(recordings.name, [request.partition_key])
    materialize(ASSETS, selection=["raw_recording"], partition_key=request.partition_key,
                instance=instance, resources=resources, tags=request.tags)


def ticks_until_quiet(tick, n=6):
    requests = []
    for _ in range(n):
        result = tick()
        requests += result.run_requests
    return requests


def test_upload_notification_runs_once_and_message_is_deleted_after(tick, instance, resources,
                                                                      settings, samples, queues):
    rid = upload_file(settings, samples["en_joy"]["path"], "sqs-user")
    first = tick()
    assert [r.run_key for r in first.run_requests] == [rid]
    assert first.run_requests[0].tags[RECORDING_TAG] == rid
    assert first.run_requests[0].tags[ATTEMPT_TAG] == "1"
    # The original is replaced by a follow-up; nothing is lost while the run is pending.
    assert queues.depth()["visible"] + queues.depth()["in_flight"] == 1
    start_run(instance, resources, first.run_requests[0])
    assert ticks_until_quiet(tick) == []
    assert queues.depth() == {"visible": 0, "in_flight": 0}


def test_duplicates_of_every_kind_give_one_run(tick, instance, resources, settings, samples, queues):
    rid = upload_file(settings, samples["en_angry"]["path"], "sqs-dup")
    key = f"uploads/sqs-dup/{rid}.mp3"
    event = {"Records": [{"eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": settings.bucket}, "object": {"key": key}}}]}
    queues.send(event)
    queues.send(event)
    queues.send({"recording_id": rid, "s3_key": key, "user_id": "sqs-dup", "metadata": {}})
    queues.send({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    requests = tick().run_requests
    assert [r.run_key for r in requests] == [rid]
    start_run(instance, resources, requests[0])
    assert ticks_until_quiet(tick) == []
    assert queues.depth() == {"visible": 0, "in_flight": 0}


def test_redelivery_after_visibility_timeout(tick, instance, resources, settings, samples, queues):
    """A consumer took the message and died without deleting it: it comes back, once."""
    rid = upload_file(settings, samples["en_neutral"]["path"], "sqs-redeliver")
    taken = queues.receive(10, visibility_s=1)
    assert len(taken) == 1 and rid in taken[0].body
    assert tick().run_requests == []  # invisible for now
    time.sleep(1.5)
    requests = tick().run_requests
    assert [r.run_key for r in requests] == [rid]
    start_run(instance, resources, requests[0])
    assert ticks_until_quiet(tick) == []
    assert queues.depth() == {"visible": 0, "in_flight": 0}


POISON = ["{not json", json.dumps({"recording_id": "x"}),
          json.dumps({"Records": [{"eventName": "ObjectCreated:Put",
                                   "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "uploads/u/r.m4a"}}}]})]


def test_poison_reaches_the_dead_letter_queue_with_its_reason_and_redrives(tick, queues, capsys):
    for body in POISON:
        queues.send(body)
    for _ in range(8):
        assert tick().run_requests == []
    assert queues.depth()["visible"] + queues.depth()["in_flight"] == 0
    assert cli.main(["dlq", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["body"] for r in rows) == sorted(POISON)
    reasons = " | ".join(r["reason"] for r in rows)
    assert "not JSON" in reasons and "lacks" in reasons and "unknown bucket" in reasons
    assert cli.main(["dlq", "redrive"]) == 0
    time.sleep(1)
    assert queues.depth(dead_letter=True)["visible"] + queues.depth(dead_letter=True)["in_flight"] == 0
    assert queues.depth()["visible"] == len(POISON)


def test_retry_runs_a_failed_retryable_recording_as_a_new_attempt(tick, instance, resources,
                                                                     settings, samples, queues, capsys):
    rid = upload_file(settings, samples["ja_tired"]["path"], "sqs-retry")
    (request,) = tick().run_requests
    start_run(instance, resources, request)
    ticks_until_quiet(tick)
    tracker = resources["tracker"]
    tracker.fail(rid, ProcessingError("transcription_failed", "throttled too long", retryable=True))
    assert cli.main(["retry", rid]) == 0
    assert tracker.status.get(rid)["attempt"] == 2
    (again,) = tick().run_requests
    assert again.run_key == f"{rid}#2" and again.tags[ATTEMPT_TAG] == "2"
    # A non-retryable failure cannot be retried.
    tracker.status.advance(rid, "complete")
    other = upload_file(settings, samples["en_joy"]["path"], "sqs-retry")
    tracker.register(other, f"uploads/sqs-retry/{other}.m4a")
    tracker.fail(other, ProcessingError("too_short", "0.4 s", retryable=False))
    assert cli.main(["retry", other]) == 1

"""The ingest's consumer against the real local queue: at-least-once done right.

Each test starts with both queues drained (the `queues` and `ingest` fixtures, conftest.py);
S3 notifications come from the bucket's real notification configuration (moto delivers
them to the queue). Launches create the run in an ephemeral instance.
"""

import json
import time

import pytest
from dagster import DagsterInstance

from vomage_dagster import cli
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.messages import upload_notice
from vomage_dagster.domain.run_tags import recording_tag, recordings_of_run
from vomage_dagster.local.client.uploads import upload_file


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def covered(requests) -> list[str]:
    return [rid for r in requests for rid in recordings_of_run(r.tags)]


def passes_until_quiet(ingest, n=4):
    return [r for _ in range(n) for r in ingest()]


def test_an_upload_notification_launches_once_and_its_message_is_deleted(ingest, settings, samples, queues):
    rid = upload_file(settings, samples["en_joy"]["path"], "sqs-user")
    (request,) = ingest()
    assert request.partition_key == rid and request.tags[recording_tag(rid)] == "1"
    # The run exists, so the message is gone at once: no follow-up, nothing waits.
    assert queues.depth() == {"visible": 0, "in_flight": 0}
    assert passes_until_quiet(ingest) == []


def test_duplicates_of_every_kind_give_one_run(ingest, settings, samples, queues):
    rid = upload_file(settings, samples["en_angry"]["path"], "sqs-dup")
    key = f"uploads/sqs-dup/{rid}.mp3"
    event = {"Records": [{"eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": settings.bucket}, "object": {"key": key}}}]}
    queues.send(event)
    queues.send(event)
    queues.send({"recording_id": rid, "s3_key": key, "user_id": "sqs-dup", "metadata": {}})
    queues.send(upload_notice(parse_upload_key(key), settings.bucket))  # the app's notice, twice
    queues.send(upload_notice(parse_upload_key(key), settings.bucket))
    queues.send({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    assert covered(passes_until_quiet(ingest)) == [rid]
    assert queues.depth() == {"visible": 0, "in_flight": 0}


def test_redelivery_after_visibility_timeout(ingest, settings, samples, queues):
    """A consumer took the message and died without deleting it: it comes back, once."""
    rid = upload_file(settings, samples["en_neutral"]["path"], "sqs-redeliver")
    taken = queues.receive(10, visibility_s=1)
    assert len(taken) == 1 and rid in taken[0].body
    time.sleep(1.5)
    assert covered(passes_until_quiet(ingest)) == [rid]
    assert queues.depth() == {"visible": 0, "in_flight": 0}


POISON = ["{not json", json.dumps({"recording_id": "x"}),
          json.dumps({"Records": [{"eventName": "ObjectCreated:Put",
                                   "s3": {"bucket": {"name": "elsewhere"}, "object": {"key": "uploads/u/r.m4a"}}}]})]


def test_poison_reaches_the_dead_letter_queue_with_its_reason_and_redrives(ingest, queues, capsys):
    for body in POISON:
        queues.send(body)
    for _ in range(6):
        assert ingest() == []
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


def test_retry_launches_a_failed_retryable_recording_as_a_new_attempt(ingest, resources, settings, samples):
    rid = upload_file(settings, samples["ja_tired"]["path"], "sqs-retry")
    assert covered(ingest()) == [rid]
    tracker = resources["tracker"]
    tracker.fail(rid, ProcessingError("transcription_failed", "throttled too long", retryable=True))
    assert cli.main(["retry", rid]) == 0
    assert tracker.status.get(rid)["attempt"] == 2
    (again,) = ingest()
    assert again.tags[recording_tag(rid)] == "2"
    # A non-retryable failure cannot be retried.
    other = upload_file(settings, samples["en_joy"]["path"], "sqs-retry")
    tracker.register(other, f"uploads/sqs-retry/{other}.m4a")
    tracker.fail(other, ProcessingError("too_short", "0.4 s", retryable=False))
    assert cli.main(["retry", other]) == 1


def test_a_failed_launch_keeps_the_message_then_the_dead_letter_queue_says_why(
        instance, resources, settings, samples, queues, capsys):
    """No run could be launched (the code location reloading, say): the message comes back
    for another try; after the queue's last receive it is a dead letter with the reason,
    and the recording waits, registered, for the stranded-recordings sensor."""
    import logging

    from vomage_dagster.ingest.consumer import MAX_RECEIVES, ingest_once
    from vomage_dagster.ingest.launcher import LaunchFailed

    def refuse(request):
        raise LaunchFailed("PythonError: the code location is reloading")

    rid = upload_file(settings, samples["ja_tired"]["path"], "ingest-fail")
    for _ in range(MAX_RECEIVES):
        assert ingest_once(queues, resources["store"], instance, resources["tracker"], refuse, 10,
                           logging.getLogger("test")) == 0
    assert instance.get_runs() == []
    assert resources["tracker"].status.get(rid)["stage"] == "uploaded"
    assert queues.receive(10) == []  # gone to the dead letters
    assert cli.main(["dlq", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)  # the queues were drained before the test
    assert "no run could be launched" in row["reason"] and "ObjectCreated" in row["body"]

"""A status that tells the truth: a sentence per stage in the user's language, an ETA from
the stages measured recently, and a retryable failure retried automatically (bounded, with
backoff) before it is shown failed. Domain rules on plain dicts; the tracker against the
local stack's DynamoDB, SQS and Redis."""

import datetime as dt
import json
import time
import uuid

import pytest

from vomage_dagster.domain import estimates, retries, status_messages
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.resources import stage_timings
from vomage_dagster.resources.auto_retry import FAILED, REFUSED, RETRIED
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.stage_timings import StageTimings
from vomage_dagster.resources.tracker import ProcessingTracker

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
TRANSIENT = {"code": "image_failed", "message": "the image model timed out", "retryable": True}


# --- messages --------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["en-US", "zh-CN", "ja-JP"])
def test_every_stage_has_a_sentence_in_each_language(language):
    said = {stage: status_messages.stage_message(stage, language) for stage in life.STAGES if stage != life.FAILED}
    assert all(said.values()) and len(set(said.values())) == len(said)
    failed = status_messages.stage_message(life.FAILED, language, {"code": "too_short", "retryable": False})
    assert failed and failed not in said.values()


def test_the_sentence_is_in_the_users_language_else_english():
    assert "录音" in status_messages.stage_message("transcribing", "zh-CN")
    assert "録音" in status_messages.stage_message("transcribing", "ja")
    assert status_messages.stage_message("transcribing", "fr-FR") == status_messages.STAGES["en"]["transcribing"]
    unknown = status_messages.stage_message(life.FAILED, "en", {"code": "something_new", "retryable": True})
    assert unknown == status_messages.FAILURES["en"]["retryable"]


# --- estimates -------------------------------------------------------------------------

def timed_item(seconds: dict[str, float]) -> dict:
    at, item = NOW, {}
    for stage in (*estimates.TIMED, life.COMPLETE):
        item[life.ENTERED[stage]] = life.timestamp(at)
        at += dt.timedelta(seconds=seconds.get(stage, 0.0))
    return item


def test_stage_durations_come_from_the_entry_times():
    item = timed_item({life.UPLOADED: 1.5, life.TRANSCRIBING: 4.0, life.ANALYZING: 0.9, life.GENERATING: 3.1})
    assert estimates.durations(item) == {life.UPLOADED: 1.5, life.TRANSCRIBING: 4.0, life.ANALYZING: 0.9,
                                         life.GENERATING: 3.1}
    assert estimates.durations({}) == {}
    assert estimates.durations(timed_item({life.UPLOADED: 2 * estimates.MAX_STAGE_S})) == {}  # an outage
    # The mood was ready when its stage began: `analyzing` was never entered, and took no time.
    skipped = {k: v for k, v in item.items() if k != life.ENTERED[life.ANALYZING]}
    assert estimates.durations(skipped) == {life.UPLOADED: 1.5, life.TRANSCRIBING: 4.9, life.ANALYZING: 0.0,
                                            life.GENERATING: 3.1}
    unfinished = {k: v for k, v in item.items() if k != life.ENTERED[life.COMPLETE]}
    assert estimates.durations(unfinished) == {}


def test_the_estimate_is_the_medians_of_the_stages_ahead():
    samples = {life.UPLOADED: [1.0, 1.2, 9.0], life.TRANSCRIBING: [4.0, 4.2, 3.8, 30.0],
               life.ANALYZING: [0.9], life.GENERATING: [3.0, 3.2, 3.1]}
    typical = estimates.medians(samples)
    assert typical[life.TRANSCRIBING] == pytest.approx(4.1)  # one slow outlier moves nothing
    assert typical[life.ANALYZING] == estimates.TYPICAL[life.ANALYZING]  # too few samples yet
    assert estimates.seconds_left(life.ANALYZING, typical) == pytest.approx(
        typical[life.ANALYZING] + typical[life.GENERATING], abs=0.05)
    assert estimates.seconds_left(life.COMPLETE, typical) == 0.0


# --- automatic retries: the rule ---------------------------------------------------------

def test_the_backoff_grows_is_jittered_and_bounded():
    first = [retries.delay_s(1, 5.0, f"rec-{i}") for i in range(200)]
    second = [retries.delay_s(2, 5.0, f"rec-{i}") for i in range(200)]
    assert 4 <= min(first) and max(first) <= 6 and len(set(first)) > 1
    assert 12 <= min(second) and max(second) <= 18
    assert retries.delay_s(9, 5.0, "rec-x") == retries.MAX_DELAY_S
    assert retries.delay_s(1, 5.0, "rec-x") == retries.delay_s(1, 5.0, "rec-x")


def in_progress(attempt: int = 1, owner: str = "run-a", **extra) -> dict:
    item = life.apply(None, life.register("rec-1", "uploads/u/rec-1.m4a", NOW))
    item.update({"attempt": attempt, "owner": owner, "stage": life.GENERATING, "stage_rank": 3,
                 "transcript": {"text": "hi"}, "mood": {"primary_emotion": "joy"}, **extra})
    return item


def test_an_automatic_retry_is_a_new_attempt_shown_from_the_start():
    step = life.auto_retry("rec-1", TRANSIENT, NOW, 1, "run-a", 0, 2, NOW + dt.timedelta(seconds=5))
    after = life.apply(in_progress(), step)
    assert (after["stage"], after["attempt"], after["auto_retries"], after["error"]) == (life.UPLOADED, 2, 1, None)
    assert "owner" not in after and "transcript" not in after and "mood" not in after
    assert after["last_error"]["code"] == "image_failed" and after["last_error"]["attempt"] == 1
    assert after[life.ENTERED[life.UPLOADED]] == life.timestamp(NOW)


def test_one_failure_answered_twice_is_retried_once():
    step = life.auto_retry("rec-1", TRANSIENT, NOW, 1, "run-a", 0, 2, NOW)
    after = life.apply(in_progress(), step)
    assert not step.allowed(after)  # another attempt now, and a retry counted


def test_retries_are_bounded_and_only_for_what_retrying_can_mend():
    with pytest.raises(ValueError):
        life.auto_retry("rec-1", TRANSIENT, NOW, 3, "run-a", 2, 2, NOW)
    with pytest.raises(ValueError):
        life.auto_retry("rec-1", {**TRANSIENT, "retryable": False}, NOW, 1, "run-a", 0, 2, NOW)
    assert not life.auto_retryable({"code": "run_canceled", "retryable": True})
    assert not life.auto_retryable({"code": "stalled", "retryable": True})
    other_owner = life.auto_retry("rec-1", TRANSIENT, NOW, 1, "run-b", 0, 2, NOW)
    assert not other_owner.allowed(in_progress(owner="run-a"))


# --- against the local stack -----------------------------------------------------------

@pytest.fixture()
def retry_queue(settings):
    sqs = client("sqs", settings.region)
    name = f"vomage-test-retries-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    yield name, url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture()
def own_timings(settings):
    """A Redis database of the test's own, so the stage timings other tests record stay out."""
    cache = Cache(redis_url=settings.redis_url.rsplit("/", 1)[0] + "/7")
    cache.redis.flushdb()
    stage_timings._read.clear()
    yield cache
    cache.redis.flushdb()
    stage_timings._read.clear()


def tracker_with(resources, cache, queue_name: str = "", retries_left: int = 0) -> ProcessingTracker:
    base = resources["tracker"]
    return ProcessingTracker(status=base.status, cache=cache, events=base.events, records=base.records,
                             auto_retries=retries_left, retry_backoff_s=1.0, retry_queue=queue_name)


def started(tracker: ProcessingTracker, language: str = "zh-CN") -> str:
    rid = f"rec-20261207090000-{uuid.uuid4().hex[:8]}"
    tracker.register(rid, f"uploads/u-{rid[-8:]}/{rid}.m4a")
    tracker.own(rid, 1, "run-a")
    tracker.advance(rid, life.TRANSCRIBING, 1, "run-a", transcript={"text": "你好", "language": language})
    return rid


def test_a_retryable_failure_is_retried_after_a_backoff_then_failed_once_spent(resources, own_timings,
                                                                               retry_queue, settings):
    name, url = retry_queue
    tracker = tracker_with(resources, own_timings, name, retries_left=1)
    rid = started(tracker)
    error = ProcessingError("image_failed", "the image model timed out", retryable=True)

    assert tracker.fail_or_retry(rid, error, 1, "run-a") == RETRIED
    item = tracker.status.get(rid)
    assert (item["stage"], item["attempt"], item["auto_retries"], item["error"]) == (life.UPLOADED, 2, 1, None)
    assert "自动重试" in item["message"]  # the user reads "trying again", in their language
    assert own_timings.get_json("status", rid)["stage"] == life.UPLOADED  # pushed to the live view
    # The same failure reported again (the run-failure sensor after the stage): retried once only.
    assert tracker.fail_or_retry(rid, error, 1, "run-a") == REFUSED

    sqs = client("sqs", settings.region)
    sent = time.monotonic()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert got == []  # not before its backoff
    while not got and time.monotonic() - sent < 10:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    body = json.loads(got[0]["Body"])
    assert body["recording_id"] == rid and body["attempt"] == 2

    # The new attempt fails as well: no retries left, now it is failed, in Chinese.
    tracker.own(rid, 2, "run-b")
    assert tracker.fail_or_retry(rid, error, 2, "run-b") == FAILED
    item = tracker.status.get(rid)
    assert item["stage"] == life.FAILED and item["error"]["code"] == "image_failed"
    assert item["message"] == status_messages.FAILURES["zh"]["retryable"]


def test_bad_input_is_failed_at_once(resources, own_timings, retry_queue):
    tracker = tracker_with(resources, own_timings, retry_queue[0], retries_left=2)
    rid = started(tracker, "ja-JP")
    assert tracker.fail_or_retry(rid, ProcessingError("too_short", "0.4 s"), 1, "run-a") == FAILED
    item = tracker.status.get(rid)
    assert item["stage"] == life.FAILED and item["attempt"] == 1
    assert item["message"] == status_messages.FAILURES["ja"]["too_short"]


@pytest.mark.parametrize("code, final", [("ValidationException", True), ("ThrottlingException", False)])
def test_a_request_aws_refused_as_invalid_is_failed_at_once_not_retried(resources, own_timings, retry_queue,
                                                                        code, final):
    """A request AWS calls malformed is refused again however often it is sent; a
    throttled one may pass later and is retried as before."""
    from botocore.exceptions import ClientError
    from dagster import Failure

    from vomage_dagster.assets.failures import recording_stage
    from vomage_dagster.domain.lifecycle import Attempt

    tracker = tracker_with(resources, own_timings, retry_queue[0], retries_left=2)
    rid = started(tracker)
    refused = ClientError({"Error": {"Code": code, "Message": "temperature: not supported"}}, "Converse")
    with pytest.raises(Failure if final else ClientError) as raised:
        with recording_stage(tracker, Attempt(rid, 1, "run-a", f"uploads/u-{rid[-8:]}/{rid}.m4a")):
            raise refused
    item = tracker.status.get(rid)
    if final:
        assert raised.value.allow_retries is False
        assert item["stage"] == life.FAILED and item["attempt"] == 1
        assert item["error"]["retryable"] is False and "Converse ValidationException" in item["error"]["message"]
        assert "temperature" not in item["error"]["message"]  # the service's text stays in the logs
    else:
        assert item["stage"] == life.UPLOADED and item["attempt"] == 2  # retried automatically


def test_without_a_retry_queue_a_retryable_failure_is_failed(resources, own_timings):
    tracker = tracker_with(resources, own_timings, "", retries_left=2)
    rid = started(tracker)
    assert tracker.fail_or_retry(rid, ProcessingError("image_failed", "x", retryable=True), 1, "run-a") == FAILED


def test_the_eta_comes_from_the_stages_measured_here(resources, own_timings):
    tracker = tracker_with(resources, own_timings)
    measured = {life.UPLOADED: 2.0, life.TRANSCRIBING: 11.0, life.ANALYZING: 1.5, life.GENERATING: 4.0}
    for _ in range(estimates.MIN_SAMPLES):
        StageTimings(own_timings).record(timed_item(measured))
    stage_timings._read.clear()
    rid = started(tracker, "en-US")
    item = tracker.status.get(rid)
    assert item["eta_seconds"] == pytest.approx(sum(measured[s] for s in estimates.TIMED[1:]), abs=0.05)
    assert item["message"] == status_messages.STAGES["en"][life.TRANSCRIBING]
    # A complete recording adds its own stage times to what the next estimates use.
    tracker.advance(rid, life.ANALYZING, 1, "run-a")
    tracker.advance(rid, life.GENERATING, 1, "run-a")
    tracker.complete(rid, 1, "run-a")
    samples = StageTimings(own_timings).samples()
    assert all(len(samples[s]) == estimates.MIN_SAMPLES + 1 for s in estimates.TIMED)


@pytest.mark.slow
def test_a_recording_whose_image_model_failed_once_completes_on_its_own(resources, own_timings, retry_queue,
                                                                         settings, samples):
    """The image model unreachable for the first attempt: the user is told it is trying
    again, the retry is queued, and the next attempt completes without anyone pressing Retry."""
    from dagster import DagsterInstance, materialize

    from vomage_dagster.assets.partitions import recordings
    from vomage_dagster.assets.recording import ASSETS, ORDER
    from vomage_dagster.local.client.uploads import upload_file
    from vomage_dagster.resources.painter import ImagePainter

    name, url = retry_queue
    tracker = tracker_with(resources, own_timings, name, retries_left=2)
    painter = resources["painter"]
    unreachable = ImagePainter(model_id=painter.model_id, region_name=painter.region_name,
                               endpoint_url="http://127.0.0.1:9")
    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], "demo-retry", lat=item["lat"], lon=item["lon"], tz=item["tz"])
    tracker.register(rid, next(iter(resources["store"].list(f"uploads/demo-retry/{rid}."))).key)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(recordings.name, [rid])
        broken = {**resources, "tracker": tracker, "painter": unreachable}
        first = materialize(ASSETS, selection=ORDER, partition_key=rid, instance=instance, resources=broken,
                            raise_on_error=False)
        assert not first.success
        status = tracker.status.get(rid)
        assert (status["stage"], status["attempt"], status["auto_retries"]) == (life.UPLOADED, 2, 1)
        assert status["last_error"]["code"] == "internal_error"
        sqs = client("sqs", settings.region)
        got: list = []
        while not got:
            got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
        assert json.loads(got[0]["Body"])["attempt"] == 2
        again = materialize(ASSETS, selection=ORDER, partition_key=rid, instance=instance,
                            resources={**resources, "tracker": tracker})
        assert again.success
    status = tracker.status.get(rid)
    assert (status["stage"], status["attempt"], status["error"]) == (life.COMPLETE, 2, None)
    assert status["message"] == status_messages.STAGES["en"][life.COMPLETE]

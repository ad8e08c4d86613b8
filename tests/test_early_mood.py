"""The early mood: the ingest asks a streamed recording's mood while its run starts, as
its own role, and the run's `mood` stage uses the answer instead of calling the model;
nothing is shown before the run has validated the audio. Against the real local stack."""

from __future__ import annotations

import json
import time

import pytest
from dagster import DagsterInstance, materialize
from helpers import acting_as

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain import prompts, streamed, styles
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.run_tags import recording_tag
from vomage_dagster.ingest.early_mood import EarlyMood
from vomage_dagster.local.client.speaking_app import speak
from vomage_dagster.local.client.uploads import upload_file


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def spoken(settings, samples):
    item = samples["en_angry"]
    return speak(settings, item["path"], "early-ann", language="en-US", realtime=False, tz=item["tz"])


def upload_of(resources, rid: str):
    return next(parse_upload_key(o.key) for o in resources["store"].list("uploads/")
                if parse_upload_key(o.key) and parse_upload_key(o.key).recording_id == rid)


def launched(instance, resources, rid: str):
    """The chain as the ingest launches it: registered, tagged with its attempt."""
    resources["tracker"].register(rid, upload_of(resources, rid).key)
    instance.add_dynamic_partitions(recordings.name, [rid])
    return materialize(ASSETS, partition_key=rid, instance=instance, resources=resources,
                       tags={recording_tag(rid): "1"}, raise_on_error=False)


def forget_analysis(resources, rid: str, user: str) -> None:
    """Empty the analysis cache entry for this recording's words: the model must be asked."""
    raw = resources["store"].get_bytes(streamed.sidecar_key(user, rid))
    words = streamed.validate(raw, rid, None, "en-US")
    resources["cache"].delete("analysis", prompts.analysis_cache_key(words.text, words.language,
                                                                     resources["analyzer"].model_id))


def early_of(resources) -> EarlyMood:
    return EarlyMood(resources["store"], resources["cache"], resources["analyzer"])


def test_the_run_uses_the_mood_the_ingest_asked_for_as_its_own(spoken, resources, instance, model_calls):
    rid = spoken.recording_id
    forget_analysis(resources, rid, "early-ann")
    early = early_of(resources)
    with acting_as("IngestSensorRole"):  # what the template grants the ingest, no more
        assert early.run_one(upload_of(resources, rid)) == "asked"
    assert early.asked == 1
    before = model_calls()
    assert launched(instance, resources, rid).success
    assert model_calls()["analysis"] == before["analysis"]  # the run did not ask again
    mood = resources["store"].get_json(f"processed/{rid}/mood.json")
    assert mood["early"] is True and mood["cache_hit"] is False and mood["usage"]["output_tokens"] > 0
    record = resources["records"].get(rid)
    assert record["cost_usd"]["stages"]["mood"] > 0 and record["cost_usd"]["saved"] == 0  # paid, not saved
    # The mood was there when its stage began: no `analyzing` write, the style shown with the mood.
    status = resources["tracker"].status.get(rid)
    assert status["stage"] == "complete" and "entered_analyzing" not in status
    assert status["style"] == styles.style_in(mood["image_prompt"])
    # Asked once per upload: asking again (the pass that launches it) touches nothing.
    again, seen = early_of(resources), []
    again.run_one = lambda upload: seen.append(upload.recording_id) or "counted"
    again.start([upload_of(resources, rid)])
    deadline = time.monotonic() + 5
    while (not seen or again._in_flight) and time.monotonic() < deadline:
        time.sleep(0.01)
    again.start([upload_of(resources, rid)])
    again._pool.shutdown(wait=True)
    assert seen == [rid]


def test_bad_audio_with_good_words_shows_no_mood(spoken, settings, resources, instance, tmp_path):
    """The words arrive and the mood is asked early, but the audio is not a recording:
    the run fails it, and the mood is never shown."""
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00\x01not audio" * 200)
    rid = upload_file(settings, bad, "early-ann", streamed=True, lang="en-US")
    doc = json.loads(resources["store"].get_bytes(streamed.sidecar_key("early-ann", spoken.recording_id)))
    resources["store"].put_bytes(streamed.sidecar_key("early-ann", rid),
                                 json.dumps({**doc, "recording_id": rid}).encode(), "application/json")
    forget_analysis(resources, rid, "early-ann")
    assert early_of(resources).run_one(upload_of(resources, rid)) == "asked"
    assert not launched(instance, resources, rid).success
    status = resources["tracker"].status.get(rid)
    assert status["stage"] == "failed" and status["error"]["code"] == "undecodable"
    assert "mood" not in status and resources["records"].get(rid) is None


def test_an_upload_without_a_stream_or_with_a_refused_one_is_left_to_its_run(spoken, settings, resources,
                                                                            samples, tmp_path):
    item = samples["en_joy"]
    plain = upload_file(settings, item["path"], "early-bob", tz=item["tz"])
    assert early_of(resources).run_one(upload_of(resources, plain)) == "no streamed transcript promised"
    # The upload says Japanese, the words are English: the ingest does not ask.
    other = upload_file(settings, item["path"], "early-ann", streamed=True, lang="ja-JP")
    doc = json.loads(resources["store"].get_bytes(streamed.sidecar_key("early-ann", spoken.recording_id)))
    resources["store"].put_bytes(streamed.sidecar_key("early-ann", other),
                                 json.dumps({**doc, "recording_id": other}).encode(), "application/json")
    assert early_of(resources).run_one(upload_of(resources, other)).startswith("sidecar refused")


def test_a_run_waits_for_the_early_call_in_flight_instead_of_asking_twice(resources):
    from vomage_dagster.assets.stages import _analysis_or_wait

    cache = resources["cache"]
    cache.set_json("analysis-pending", "k-in-flight", "rec-x")
    import threading

    answer = {"primary_emotion": "joy"}
    threading.Timer(0.3, lambda: cache.set_json("analysis", "k-in-flight", answer)).start()
    assert _analysis_or_wait(cache, "k-in-flight") == answer
    cache.delete("analysis-pending", "k-in-flight")
    assert _analysis_or_wait(cache, "k-nobody-asked") is None  # nothing pending: no wait


def test_a_role_without_the_grant_is_refused(spoken, resources):
    """The grant the ingest role has is what makes the early call possible (local IAM)."""
    from botocore.exceptions import ClientError

    forget_analysis(resources, spoken.recording_id, "early-ann")
    with acting_as("WebserverRole"), pytest.raises(ClientError) as refused:
        early_of(resources).run_one(upload_of(resources, spoken.recording_id))
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "403")

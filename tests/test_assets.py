"""Each asset materialized with `materialize()` against the real local stack.

A recording is uploaded as the app would, its partition added, and the chain
materialized one asset at a time: every step's output is read back from S3 by the next.
"""

import json

import pytest
from dagster import DagsterInstance, materialize
from helpers import own_and_move

from vomage_dagster.assets.partitions import recordings
from vomage_dagster.assets.recording import ASSETS, ORDER
from vomage_dagster.domain.context import WEATHER_KINDS
from vomage_dagster.domain.images import png_size
from vomage_dagster.domain.keys import new_recording_id
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.aws import client
from vomage_dagster.testing.audio_files import encode, silence, tone


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_asset(instance, resources, rid, name, raise_on_error=True):
    instance.add_dynamic_partitions(recordings.name, [rid])
    return materialize(ASSETS, selection=[name], partition_key=rid, instance=instance,
                       resources=resources, raise_on_error=raise_on_error)


def output(resources, rid, name):
    """What a stage produced: its JSON output in S3."""
    return resources["store"].get_json(f"processed/{rid}/{name}.json")


@pytest.fixture(scope="module")
def chain(settings, resources, instance, samples, events_queue):
    """The English sample through all six assets, one materialize() each."""
    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], item["user"], lat=item["lat"], lon=item["lon"],
                      tz=item["tz"])
    results = {name: run_asset(instance, resources, rid, name) for name in ORDER}
    return rid, {name: output(resources, rid, name) for name in results}, results


def test_raw_recording(chain, resources):
    rid, out, _ = chain
    raw = out["raw_recording"]
    assert raw["recording_id"] == rid and raw["user_id"] == "demo-alice"
    assert 3 < raw["duration_s"] < 10 and len(raw["sha256"]) == 64
    assert raw["time_zone"] == "America/Los_Angeles" and raw["lat"] == 47.6  # the place cell, not 47.61
    assert resources["store"].exists(f"processed/{rid}/raw_recording.json")


def test_transcript(chain):
    _, out, results = chain
    t = out["transcript"]
    assert t["language"] == "en-US" and "happy" in t["text"].lower()
    assert t["segments"] and 0 < t["confidence"] <= 1 and t["cache_hit"] is False
    meta = results["transcript"].asset_materializations_for_node("recording_chain")[0].metadata
    assert "happy" in meta["preview"].value.lower()


def test_recording_context(chain):
    _, out, _ = chain
    ctx = out["recording_context"]
    assert ctx["time_zone"] == "America/Los_Angeles"
    assert ctx["time_of_day"] in ("morning", "afternoon", "evening", "night")
    assert ctx["place"] == "47.6,-122.3" and ctx["weather"]["source"] == "open-meteo"  # the stand-in
    assert ctx["weather"]["condition"] in WEATHER_KINDS and ctx["weather"]["observed_at"]


def test_mood(chain):
    _, out, results = chain
    m = out["mood"]
    assert m["primary_emotion"] == "joy" and m["valence"] > 0
    assert "joy" in m["image_prompt"] and "happy" not in m["image_prompt"]
    meta = results["mood"].asset_materializations_for_node("recording_chain")[0].metadata
    assert meta["primary_emotion"].value == "joy"


def test_mood_image(chain, resources):
    rid, out, results = chain
    img = out["mood_image"]
    store = resources["store"]
    assert png_size(store.get_bytes(img["image_key"])) == (1024, 1024)
    assert png_size(store.get_bytes(img["thumbnail_key"])) == (256, 256)
    assert img["image_key"] == f"processed/{rid}/image.png"
    meta = results["mood_image"].asset_materializations_for_node("recording_chain")[0].metadata
    # Links a browser can open: the thumbnail inline, the image and the output as http URLs.
    import urllib.request

    thumb = meta["thumbnail"].value
    assert thumb.startswith("![mood image](http://") and len(thumb) < 1000  # short: rendered inline
    for url in (thumb[len("![mood image]("):-1], meta["image"].value, meta["output"].value):
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and resp.read(8)
    assert meta["size"].value == "1024×1024"


def test_published_record(chain, resources, events_queue, settings):
    rid, out, results = chain
    rec = resources["records"].get(rid)
    assert rec["mood"]["primary_emotion"] == "joy" and rec["image_key"] == out["mood_image"]["image_key"]
    assert set(rec["seconds"]) >= {"raw_recording", "transcript", "mood", "mood_image"}
    assert rec["models"]["analysis"] == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert rec["models"]["image"] == "stability.stable-image-core-v1:1"
    # The 15 s target, per recording in the UI: seconds from the upload to the record.
    (published,) = [e for e in results["published_record"].asset_materializations_for_node("recording_chain")
                    if e.asset_key.path[-1] == "published_record"]
    assert 0 < published.metadata["upload_to_published_s"].value < 600
    assert published.metadata["within_15s"].value == (published.metadata["upload_to_published_s"].value <= 15)
    cost = rec["cost_usd"]
    # A fresh recording pays every stage: Transcribe's 15 s minimum, the tokens the
    # Converse answer reported, one image; nothing was saved.
    assert cost["stages"]["transcript"] == pytest.approx(0.024 * 15 / 60, abs=1e-6)
    tokens = out["mood"]["usage"]
    assert tokens["input_tokens"] > 100 and tokens["output_tokens"] > 10
    assert cost["stages"]["mood"] == pytest.approx(
        (tokens["input_tokens"] * 1.0 + tokens["output_tokens"] * 5.0) / 1e6, abs=1e-6)
    assert cost["stages"]["mood_image"] == 0.04 and cost["saved"] == 0
    assert cost["total"] == pytest.approx(sum(cost["stages"].values()), abs=1e-6)
    status = resources["tracker"].status.get(rid)
    assert (status["stage"], status["progress"], status["error"]) == ("complete", 100, None)
    assert resources["cache"].get_json("status", rid)["stage"] == "complete"
    sqs = client("sqs", settings.region)
    msgs = sqs.receive_message(QueueUrl=events_queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in msgs.get("Messages", [])]
    assert any(b["detail-type"] == "Processing Complete" and b["detail"]["recording_id"] == rid
               for b in bodies)


def test_same_words_by_another_user_reuse_the_mood_not_the_picture(chain, settings, resources, instance,
                                                                    samples, model_calls):
    """The words and the mood are the same for the same audio (cached); the picture is the
    recording's own: its own seed, never another user's cached image."""
    before = model_calls()
    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], "someone-else", lat=item["lat"], lon=item["lon"],
                      tz=item["tz"])
    results = {name: run_asset(instance, resources, rid, name) for name in ORDER}
    after = model_calls()
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {"image": 1}
    for name in ("transcript", "mood"):
        assert output(resources, rid, name)["cache_hit"] is True
        meta = results[name].asset_materializations_for_node("recording_chain")[0].metadata
        assert meta["cache_hit"].value is True
    first, second = output(resources, chain[0], "mood_image"), output(resources, rid, "mood_image")
    assert second["cache_hit"] is False and second["seed"] != first["seed"]
    assert output(resources, rid, "mood")["image_prompt"] == output(resources, chain[0], "mood")["image_prompt"]
    store = resources["store"]
    assert store.get_bytes(second["image_key"]) != store.get_bytes(first["image_key"])
    record = resources["records"].get(rid)
    assert record["image_key"] == f"processed/{rid}/image.png"
    # Cache hits cost nothing and record what they saved: the first recording's words and mood.
    paid = resources["records"].get(chain[0])["cost_usd"]
    assert record["cost_usd"]["total"] == pytest.approx(paid["stages"]["mood_image"], abs=1e-6)
    assert record["cost_usd"]["saved"] == pytest.approx(paid["total"] - paid["stages"]["mood_image"], abs=1e-6)


def test_the_same_recording_again_reuses_its_own_picture(chain, resources, instance, model_calls):
    """A repeat of one recording (a person re-running it) finds its own picture."""
    rid = chain[0]
    before = model_calls()
    run_asset(instance, resources, rid, "mood_image")
    assert output(resources, rid, "mood_image")["cache_hit"] is True
    assert model_calls().get("image", 0) == before.get("image", 0)


@pytest.mark.parametrize(("ext", "make", "code"), [
    ("m4a", lambda: b"\x00\x01garbage" * 100, "undecodable"),
    ("txt", lambda: b"hello, I am a text file", "undecodable"),
    ("wav", lambda: encode(tone(0.4), 16_000, "wav"), "too_short"),
    ("ogg", lambda: encode(silence(302, 8_000), 8_000, "ogg"), "too_long"),
    ("webm", lambda: encode(silence(4), 16_000, "webm"), "no_speech"),
])
def test_bad_input_fails_once_with_its_code(tmp_path, settings, resources, instance, ext, make, code):
    path = tmp_path / f"bad.{ext}"
    path.write_bytes(make())
    rid = upload_file(settings, path, "demo-bad")
    result = run_asset(instance, resources, rid, "raw_recording", raise_on_error=False)
    assert not result.success
    status = resources["tracker"].status.get(rid)
    assert status["stage"] == "failed"
    assert status["error"]["code"] == code and status["error"]["retryable"] is False
    # A later stage cannot move a failed recording forward again.
    assert resources["tracker"].advance(rid, "analyzing", 1, status["owner"]) is False


def test_noise_without_words_fails_as_no_speech(tmp_path, settings, resources, instance):
    """Loud enough to pass the silence check; the recogniser hears no words."""
    import numpy as np

    rng = np.random.default_rng(7)
    path = tmp_path / "hum.wav"
    path.write_bytes(encode((0.05 * np.sin(np.arange(16_000 * 3) / 16_000 * 2 * np.pi * 60)
                             + 0.001 * rng.standard_normal(16_000 * 3)).astype("float32"),
                            16_000, "wav"))
    rid = upload_file(settings, path, "demo-bad")
    assert run_asset(instance, resources, rid, "raw_recording").success
    result = run_asset(instance, resources, rid, "transcript", raise_on_error=False)
    assert not result.success
    status = resources["tracker"].status.get(rid)
    assert (status["stage"], status["error"]["code"]) == ("failed", "no_speech")


def test_unknown_recording_fails_with_not_found(resources, instance):
    result = run_asset(instance, resources, new_recording_id(), "raw_recording", raise_on_error=False)
    assert not result.success


def stood_down(result, rid) -> str:
    """Why a run processed nothing for `rid` (it must have materialized nothing)."""
    assert result.success and not result.asset_materializations_for_node("recording_chain")
    (why,) = [o for o in result.asset_observations_for_node("recording_chain") if o.partition == rid]
    return why.metadata["outcome"].value


def test_a_run_that_does_not_own_its_recording_writes_nothing(settings, resources, instance, samples):
    """A run launched for an attempt that ended (taken for dead: failed `stalled`), or for
    an old attempt after a retry, or a second run of one attempt: it stands down, writes
    no record and leaves the status alone."""
    from vomage_dagster.domain.errors import ProcessingError
    from vomage_dagster.domain.run_tags import recording_tag

    item = samples["en_joy"]
    rid = upload_file(settings, item["path"], item["user"])
    instance.add_dynamic_partitions(recordings.name, [rid])
    assert materialize(ASSETS, selection=ORDER[:5], partition_key=rid, instance=instance,
                       resources=resources).success
    tracker = resources["tracker"]
    tracker.fail(rid, ProcessingError("stalled", "taken for dead", retryable=True), attempt=1)

    def publish(attempt: int):
        return materialize(ASSETS, selection=["published_record"], partition_key=rid, instance=instance,
                           resources=resources, tags={recording_tag(rid): str(attempt)}, raise_on_error=False)

    assert stood_down(publish(1), rid).startswith("stood down: the recording is failed (stalled)")
    assert resources["records"].get(rid) is None
    assert tracker.status.get(rid)["error"]["code"] == "stalled"

    assert tracker.retry(rid) == 2
    assert "on attempt 2, not 1" in stood_down(publish(1), rid)  # the old attempt's run
    assert resources["records"].get(rid) is None and tracker.status.get(rid)["stage"] == "uploaded"
    assert tracker.fail(rid, ProcessingError("run_failed", "late", retryable=True), attempt=1) is False

    assert publish(2).success  # the current attempt publishes
    assert resources["records"].get(rid)["recording_id"] == rid
    assert tracker.status.get(rid)["stage"] == "complete"
    assert "is complete" in stood_down(publish(2), rid)  # a second run of the same attempt
    assert resources["records"].get(rid) is not None


def test_an_owner_that_loses_its_recording_mid_run_publishes_nothing(resources):
    """The run owned the attempt, then the watchdog failed it (taken for dead) while the run
    went on: its publish writes no record and the recording stays failed."""
    from vomage_dagster.domain.errors import ProcessingError
    from vomage_dagster.resources.tracker import Superseded

    tracker = resources["tracker"]
    rid = new_recording_id()
    own_and_move(tracker, rid, "transcribing", "analyzing", "generating", owner="slow-run")
    tracker.fail(rid, ProcessingError("stalled", "taken for dead", retryable=True), 1)
    record = {"recording_id": rid, "user_id": "u", "created_at": f"2026-12-06T00:00:00+00:00#{rid}",
              "recorded_at": "2026-12-06T00:00:00+00:00"}
    with pytest.raises(Superseded, match="failed"):
        tracker.publish(record, 1, "slow-run")
    assert resources["records"].get(rid) is None and tracker.status.get(rid)["stage"] == "failed"

"""The live view in a real browser: headless Chromium with a fake microphone fed from a
sample WAV records, stops, uploads through the presigned POST, and the page shows the
words, then the mood, then the image, processed by the daemon and the ingest service on
a stack of its own, after the user signed in on the page's form against the stack's
Cognito user pool. A corrupt file chosen with the file input shows its error, and a token
the pool did not sign sends the page back to its sign-in form with the reason. The stop →
words and stop → image times the page measures are written to tests/artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import ARTIFACTS, chromium, needs_browser, poll, screenshot, text, wait_for

from vomage_dagster.local.aws.stack import free_port
from vomage_dagster.local.client.user_pool import new_password, set_user, sign_in_as
from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.settings import load_settings
from vomage_dagster.testing.browser import fake_microphone, microphone_wav, record_and_watch

pytestmark = [pytest.mark.slow, needs_browser]


@pytest.fixture()
def live_view(private_stack):
    """The deployment and `vomage app`, each as its role, on a stack of the test's own."""
    from vomage_dagster.local.deployment.live_view import running_live_view

    settings = load_settings()
    state = Path(private_stack["state_dir"])
    with running_daemon(state, {}), running_live_view(state, free_port()) as base:
        yield {"base": base, "settings": settings,
               "store": ObjectStore(bucket=settings.bucket, region_name=settings.region)}


def _wav(tmp_path: Path) -> tuple[Path, dict]:
    """A sample as the WAV Chromium's fake microphone plays, with its manifest entry."""
    sample = next(m for m in sample_manifest() if m["file"].startswith("en_joy"))
    path = tmp_path / "microphone.wav"
    return path, {**sample, "duration_s": microphone_wav(SAMPLES_DIR / sample["file"], path)}


def test_the_live_view_shows_words_then_mood_then_image(live_view, tmp_path):
    wav, sample = _wav(tmp_path)
    password = new_password()
    set_user(live_view["settings"], "browser-user", password)
    with chromium(fake_microphone(wav)) as driver:
        seen = record_and_watch(driver, f"{live_view['base']}/", "browser-user",
                                sample["duration_s"] + 0.8, password=password, style="cinematic",
                                place=(35.68, 139.69))
        # The feed lists the recording, complete, with its thumbnail.
        poll(lambda: driver.execute_script(
            "const li = document.querySelector('#feed li');"
            "return li && li.dataset.recordingId === window.vomage.recordingId && li.querySelector('img')"
            " && li.querySelector('img').complete && li.querySelector('img').naturalWidth > 0"),
            30, "the recording in the feed with its thumbnail")
        screenshot(driver, "app-complete")
        driver.execute_script("document.getElementById('feed').scrollIntoView({block: 'end'})")
        screenshot(driver, "app-feed")
        if seen["stage"] == "complete":  # the user says the picture fits
            driver.find_element("id", "thumbs-up").click()
            poll(lambda: driver.find_element("id", "rated").text, 10, "the rating's thanks")
    record = RecordsTable(table_name=load_settings().records_table, region_name=load_settings().region)
    assert seen["stage"] == "complete" and not seen["error"], seen
    assert seen["mood"]
    # What went into the picture, shown with it: the place cell, its weather, the time, the style.
    assert "near 35.7,139.7" in seen["context"] and "cinematic style" in seen["context"], seen["context"]
    assert "open-meteo" in seen["context"] and seen["message"] == "Your picture is ready."
    words = set(seen["words"].lower().replace(",", "").replace(".", "").split())
    expected = set(sample["expected_text"].lower().replace(",", "").replace(".", "").split())
    assert len(expected & words) >= len(expected) // 2, seen["words"]
    assert seen["shown"][:3] == ["words", "mood", "image"]
    # The page streamed the microphone to the streaming endpoint while recording: the words
    # on screen are the stream's, and the platform adopted that transcript (no batch job).
    assert seen["words_from"] == "stream", seen
    adopted = live_view["store"].get_json(f"processed/{seen['recording_id']}/transcript.json")
    assert adopted["source"] == "streaming", adopted.get("streaming_fallback")
    assert record.get(seen["recording_id"])["rating"] == "up"
    timings = seen["timings"]
    assert timings["words"] <= timings["mood"] <= timings["image"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "app-timings.json").write_text(json.dumps(
        {"stop_to_words_ms": timings["words"], "stop_to_mood_ms": timings["mood"],
         "stop_to_image_ms": timings["image"], "clip_s": round(sample["duration_s"], 2)}, indent=1))
    print(f"\nlive view in Chromium: stop → words {timings['words']} ms, → mood {timings['mood']} ms, "
          f"→ image {timings['image']} ms")


def test_a_corrupt_file_shows_its_error_and_a_bad_token_a_clear_message(live_view, tmp_path):
    bad = tmp_path / "corrupt.m4a"
    bad.write_bytes(b"\x00not audio at all" * 500)
    token = sign_in_as(live_view["settings"], "browser-user").access_token
    with chromium() as driver:
        driver.get(f"{live_view['base']}/?token={token}")
        wait_for(driver, lambda: "browser-user" in text(driver, "who"), what="signed in")
        driver.find_element("id", "file").send_keys(str(bad))
        wait_for(driver, lambda: "undecodable" in text(driver, "error"), timeout=120, what="the error")
        assert text(driver, "stage") == "failed"
        assert not driver.find_element("id", "retry").is_displayed()  # not retryable
        screenshot(driver, "app-error")
        driver.get(f"{live_view['base']}/?token={token[:-6]}AAAAAA")
        wait_for(driver, lambda: "bad signature" in text(driver, "sign-in-error"), what="the refusal")
        assert driver.find_element("id", "sign-in").is_displayed()
        screenshot(driver, "app-sign-in")

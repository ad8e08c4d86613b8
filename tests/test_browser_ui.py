"""The Dagster UI as a user opens it: `vomage ui` on a stack of its own, a few real uploads
(one of them corrupt) through the ingest service, then headless Chromium.

What a user must see: the six recording assets and the daily group; a recording's
transcript preview, mood and image thumbnail; a failed recording failed, with its reason;
the sensors running. Screenshots land in tests/artifacts/ (docs/screenshots/ has copies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import chromium, needs_browser, page_text, screenshot, wait_for

from vomage_dagster.local.aws.stack import free_port, http_ok
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR, sample_manifest
from vomage_dagster.local.deployment.daemon import Daemon
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.settings import load_settings

pytestmark = [pytest.mark.slow, needs_browser]
PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCATION = Daemon.LOCATION  # the code location `vomage ui` serves
RECORDING_ASSETS = ["raw_recording", "transcript", "recording_context", "mood", "mood_image",
                    "published_record"]


@pytest.fixture()
def ui(private_stack, tmp_path):
    """`vomage ui` (dagster dev, the run worker and the ingest service) on the private stack."""
    port = free_port()
    log = (tmp_path / "ui.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "vomage"), "ui", "--port", str(port)],
                            cwd=PROJECT_ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while not http_ok(f"{base}/server_info"):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.log").read_text()[-3000:]
        time.sleep(1)
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture()
def uploaded(ui, tmp_path):
    """Two good recordings and a corrupt one, uploaded as the app does, all final."""
    settings = load_settings()
    bad = tmp_path / "corrupt.m4a"
    bad.write_bytes(b"\x00not audio at all" * 400)
    good = [m for m in sample_manifest() if m["file"].startswith("en_")][:2]
    rids = [upload_file(settings, SAMPLES_DIR / m["file"], m["user"]) for m in good]
    broken = upload_file(settings, bad, "ui-user")
    status = StatusTable(table_name=settings.status_table, region_name=settings.region)
    deadline = time.monotonic() + 300
    while True:
        items = {r: status.get(r) or {} for r in [*rids, broken]}
        if all(i.get("stage") in ("complete", "failed") for i in items.values()):
            break
        assert time.monotonic() < deadline, items
        time.sleep(1)
    assert [items[r]["stage"] for r in rids] == ["complete", "complete"]
    assert items[broken]["stage"] == "failed"
    records = RecordsTable(table_name=settings.records_table, region_name=settings.region)
    return {"good": rids, "bad": broken, "records": {r: records.get(r) for r in rids},
            "error": items[broken]["error"]}


def _open(driver, url: str) -> None:
    driver.get(url)
    _skip_welcome(driver, wait_s=3)


def _skip_welcome(driver, wait_s: float = 0.0) -> None:
    """The first visit offers "Join the Dagster community" a moment after the page loads;
    a user skips it."""
    deadline = time.monotonic() + wait_s
    while True:
        for button in driver.find_elements("xpath", "//button[normalize-space()='Skip']"):
            if button.is_displayed():
                button.click()
                return
        if time.monotonic() > deadline:
            return
        time.sleep(0.3)


def shot(driver, name: str) -> None:
    _skip_welcome(driver)
    time.sleep(0.5)  # the dialog's fade-out
    screenshot(driver, name)


SWITCH_STATE = """
const leaf = [...document.querySelectorAll('*')].find(
    e => e.childElementCount === 0 && e.textContent.trim() === arguments[0]);
let row = leaf;
while (row && row.querySelectorAll('input[type=checkbox]').length < 2) row = row.parentElement;
if (!row) return null;
const boxes = row.querySelectorAll('input[type=checkbox]');
return boxes[boxes.length - 1].checked;
"""


def test_the_dagster_ui_shows_what_happened_to_each_recording(ui, uploaded):
    rid, other = uploaded["good"]
    record = uploaded["records"][rid]
    with chromium() as driver:
        # The asset graph: the six recording assets, and the daily group beside them.
        _open(driver, f"{ui}/locations/{LOCATION}/asset-groups/recording")
        wait_for(driver, lambda: all(name in page_text(driver) for name in RECORDING_ASSETS),
                 what="the six recording assets in the group's lineage")
        shot(driver, "ui-recording-lineage")
        _open(driver, f"{ui}/asset-groups")
        wait_for(driver, lambda: {"daily", "recording"} <= set(page_text(driver).split()),
                 what="the daily and recording groups in the global lineage")

        # A recording's partitions: its transcript preview, its mood, its image thumbnail.
        _open(driver, f"{ui}/assets/transcript?view=partitions&partition={rid}")
        words = record["transcript"][:40]
        wait_for(driver, lambda: words in page_text(driver), what=f"the transcript preview {words!r}")
        _open(driver, f"{ui}/assets/mood?view=partitions&partition={rid}")
        emotion = record["mood"]["primary_emotion"]
        wait_for(driver, lambda: "primary_emotion" in page_text(driver) and emotion in page_text(driver),
                 what=f"the mood {emotion}")
        _open(driver, f"{ui}/assets/mood_image?view=partitions&partition={rid}")
        loaded = wait_for(driver, lambda: [img for img in driver.find_elements("css selector", "img")
                                           if "thumbnail.png" in (img.get_attribute("src") or "")
                                           and driver.execute_script("return arguments[0].naturalWidth", img) > 0],
                          what="the mood image thumbnail, loaded")
        assert loaded
        link = wait_for(driver, lambda: [a for a in driver.find_elements("css selector", "a")
                                         if "image.png" in (a.get_attribute("href") or "")],
                        what="a link to the full image")
        with urllib.request.urlopen(link[0].get_attribute("href"), timeout=10) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        shot(driver, "ui-mood-image-partition")

        # The corrupt upload: failed in the catalog, and the reason on its events.
        bad = uploaded["bad"]
        _open(driver, f"{ui}/assets/raw_recording?view=partitions&partition={bad}")
        wait_for(driver, lambda: "failed, and did not materialize" in page_text(driver),
                 what="the corrupt recording's partition shown failed")
        assert "Materialized" not in page_text(driver).split(bad, 2)[-1].split("Latest")[0]
        shot(driver, "ui-failed-partition")
        _open(driver, f"{ui}/assets/raw_recording?view=events&partition={bad}")
        code = uploaded["error"]["code"]
        wait_for(driver, lambda: f"failed: {code}" in page_text(driver), what=f"the failure's reason ({code})")
        shot(driver, "ui-failed-reason")

        # Automation: every sensor runs locally; none of them launches recordings' runs (the
        # ingest service does), the upload sweep only sends it what nothing registered.
        _open(driver, f"{ui}/automation")
        wait_for(driver, lambda: driver.execute_script(SWITCH_STATE, "stranded_recordings_sensor") is not None,
                 what="the sensors' switches")
        wait_for(driver, lambda: driver.execute_script(SWITCH_STATE, "recording_failure_sensor"),
                 what="recording_failure_sensor running")
        states = {name: driver.execute_script(SWITCH_STATE, name) for name in (
            "recording_failure_sensor", "recording_canceled_sensor", "stranded_recordings_sensor",
            "batch_job_sensor", "upload_sweep_sensor")}
        assert states == {"recording_failure_sensor": True, "recording_canceled_sensor": True,
                          "stranded_recordings_sensor": True, "batch_job_sensor": True,
                          "upload_sweep_sensor": True}, states
        shot(driver, "ui-automation")

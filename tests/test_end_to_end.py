"""Uploads through the real sensor and daemon path, good files and one bad file of each kind.

This is what production does: the app puts an object, the S3 sensor sees it, the daemon
launches a run, the run writes status, record, image and event. Marked slow; CI runs it.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR, Upload, sample_manifest, table, wait_until_final
from vomage_dagster.local.deployment.daemon import running_daemon
from vomage_dagster.settings import load_settings
from vomage_dagster.testing.audio_files import encode, silence, tone

pytestmark = pytest.mark.slow

BAD = {
    "undecodable": ("m4a", lambda: bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8))),
    "too_short": ("wav", lambda: encode(tone(0.5), 16_000, "wav")),
    "too_long": ("ogg", lambda: encode(silence(305, 8_000), 8_000, "ogg")),
    "no_speech": ("mp3", lambda: encode(silence(3.0), 16_000, "mp3")),
}


def vomage(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "vomage_dagster.cli", *args], check=True,
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def _model_calls(info: dict) -> dict:
    url = f"http://127.0.0.1:{info['ports']['models']}/stats"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["calls"]


def test_samples_and_bad_files_end_complete_or_failed(private_stack, tmp_path):
    settings = load_settings()
    uploads: list[Upload] = []
    with running_daemon(Path(private_stack["state_dir"]), {}):
        for item in sample_manifest():
            path = SAMPLES_DIR / item["file"]
            args = ["upload", str(path), "--user", item["user"]]
            for flag in ("lat", "lon", "tz", "lang"):
                if item.get(flag):
                    args += [f"--{flag}", item[flag]]
            rid = vomage(*args).strip().splitlines()[-1]
            uploads.append(Upload(rid, path, time.time(), item["expected_text"]))
        expected_codes = {}
        for code, (ext, make) in BAD.items():
            path = tmp_path / f"{code}.{ext}"
            path.write_bytes(make())
            rid = upload_file(settings, path, "demo-bad")
            uploads.append(Upload(rid, path, time.time()))
            expected_codes[rid] = code
        assert wait_until_final(settings, uploads, timeout_s=480)
    print("\n" + table(uploads))

    for u in uploads:
        status = json.loads(vomage("status", u.recording_id, "--json"))
        assert status["recording_id"] == u.recording_id
        if u.recording_id in expected_codes:
            assert status["stage"] == "failed", status
            assert status["error"]["code"] == expected_codes[u.recording_id]
            assert status["error"]["retryable"] is False
        else:
            assert (status["stage"], status["progress"], status["error"]) == ("complete", 100, None)
            record = json.loads(vomage("record", u.recording_id, "--json"))
            assert record["language"] in ("en-US", "zh-CN", "ja-JP")
            assert record["transcript"].strip()
            assert set(record["mood"]) >= {"primary_emotion", "valence", "intensity", "keywords", "summary"}
            assert record["image_key"] == f"processed/{u.recording_id}/image.png"
            assert record["seconds"]["transcript"] > 0
    good = len(sample_manifest())
    calls = _model_calls(private_stack)
    assert (calls["transcribe"], calls["analysis"]) == (good, good)
    # Two samples may share an image prompt (same emotion, light, season, weather): then
    # the second image comes from the cache.
    image_hits = sum(u.record["cache_hits"]["mood_image"] for u in uploads if u.record)
    assert calls["image"] + image_hits == good
    langs = {u.path.name: u.record["language"] for u in uploads if u.record}
    assert langs["en_joy.m4a"] == "en-US" and langs["zh_sad.webm"] == "zh-CN"

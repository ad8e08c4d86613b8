"""Audio that attacks the decoder: each class ends in a final, clear code (or decodes the
audio alone), with its peak memory and CPU time measured in a process of its own.

The measurements are recorded (printed with -s, and written as `hostile_audio.json` in
pytest's base temporary folder); what is asserted is behaviour: the outcome, and that memory stays
bounded (the decode never holds more than a small multiple of the upload).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from dagster import DagsterInstance, materialize

from vomage_dagster.assets.recording import ASSETS
from vomage_dagster.domain.keys import parse_upload_key, upload_key
from vomage_dagster.ingest.planner import plan_runs
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.local.demo.samples import SAMPLES_DIR
from vomage_dagster.testing import hostile_files as hostile

MEASURE = """
import json, resource, sys, time
from vomage_dagster.domain import audio
from vomage_dagster.domain.errors import ProcessingError
import av  # loaded before the baseline, so only the decode's own memory counts
data = sys.stdin.buffer.read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = time.process_time()
try:
    a = audio.decode_and_validate(data)
    outcome = f"ok:{a.source_codec}:{a.duration_s:.1f}"
except ProcessingError as exc:
    outcome = f"{exc.code}: {exc.message}"
print(json.dumps({"outcome": outcome, "cpu_s": round(time.process_time() - cpu, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, 1)}))
"""

CLASSES = {
    "hls playlist (file:// entry)": (hostile.hls_playlist, "undecodable: not a mobile audio file"),
    "ffconcat list": (hostile.concat_list, "undecodable: not a mobile audio file"),
    "SDP / network protocol": (hostile.sdp_session, "undecodable: not a mobile audio file"),
    "PNG image": (hostile.png_image, "undecodable: not a mobile audio file"),
    "video only (mp4)": (hostile.video_only, "undecodable: the file has no audio stream"),
    "sample rate 768 kHz": (lambda: hostile.wav_header(768_000, 1), "undecodable: a sample rate of 768000"),
    "sample rate 4 GHz": (lambda: hostile.wav_header(4_000_000_000, 1), "undecodable: not a readable wav"),
    "200 channels": (lambda: hostile.wav_header(8_000, 200), "undecodable: 200 audio channels"),
    "one-sample packets, 60 s": (hostile.tiny_packets, "undecodable: "),
    "20 MB cover picture": (hostile.big_cover_mp3, "ok:mp3"),
    "HD video beside the audio": (hostile.video_with_audio, "ok:aac"),
    "truncated m4a (moov lost)": (lambda: hostile.truncated((SAMPLES_DIR / "en_joy.m4a").read_bytes()),
                                  "undecodable: not a readable mov"),
    "truncated mp3 (0.6 s left)": (lambda: hostile.truncated((SAMPLES_DIR / "en_angry.mp3").read_bytes(), 0.1),
                                   "too_short"),
    "empty": (lambda: b"", "undecodable: the file is empty"),
}
MEASURED: dict[str, dict] = {}


@pytest.mark.parametrize("name", list(CLASSES))
def test_each_hostile_class_ends_bounded_with_its_code(name, tmp_path_factory):
    build, expected = CLASSES[name]
    data = build()
    proc = subprocess.run([sys.executable, "-c", MEASURE], input=data, capture_output=True, timeout=120,
                          check=True)
    row = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    MEASURED[name] = {"bytes": len(data), **row}
    print(f"\n{name:<30} {len(data):>10} B  cpu {row['cpu_s']:>6.3f} s  "
          f"peak {row['peak_rss_mb']:>6.1f} MB (+{row['peak_rss_growth_mb']:.1f})  {row['outcome'][:60]}")
    (tmp_path_factory.getbasetemp() / "hostile_audio.json").write_text(json.dumps(MEASURED, indent=1))
    assert row["outcome"].startswith(expected), row["outcome"]
    # Bounded memory: the decode holds at most the upload, 301 s of 16 kHz samples and slack.
    assert row["peak_rss_growth_mb"] < 3 * len(data) / 2**20 + 120


def test_a_playlist_never_makes_the_decoder_read_local_files(tmp_path):
    """Even if something let a playlist through, no protocol may open what it names."""
    import io

    import av

    secret = tmp_path / "secret.wav"
    secret.write_bytes(hostile.wav_header(8_000, 1))
    playlist = f"#EXTM3U\n#EXTINF:2,\nfile://{secret}\n#EXT-X-ENDLIST\n".encode()
    with pytest.raises((av.FFmpegError, OSError, ValueError)):
        container = av.open(io.BytesIO(playlist), format="hls", options={"protocol_whitelist": "none"})
        list(container.decode(audio=0))


def test_a_hostile_file_in_a_batch_fails_alone(resources, settings, samples, tmp_path):
    bad = tmp_path / "tiny.mkv"
    bad.write_bytes(hostile.tiny_packets(30))
    rids = [upload_file(settings, samples["en_joy"]["path"], "batch-hostile"),
            upload_file(settings, bad, "batch-hostile")]
    arrivals = [parse_upload_key(upload_key("batch-hostile", rid, ext))
                for rid, ext in zip(rids, ("m4a", "mkv"), strict=True)]
    with DagsterInstance.ephemeral() as instance:
        (request,) = plan_runs(instance, resources["tracker"], arrivals, 10).runs
        # The run fails (one recording of it did); the other recording completes.
        assert not materialize(ASSETS, instance=instance, resources=resources, tags=request.tags,
                               raise_on_error=False).success
    status = resources["tracker"].status
    assert status.get(rids[0])["stage"] == "complete"
    failed = status.get(rids[1])
    assert failed["stage"] == "failed" and failed["error"]["code"] == "undecodable"
    assert "tiny packets" in failed["error"]["message"] and failed["error"]["retryable"] is False

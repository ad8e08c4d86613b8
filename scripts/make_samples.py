"""Make the bundled sample recordings in samples/ (run once; the results are committed).

Speech comes from espeak-ng (Debian package `espeak-ng`): English text directly,
Mandarin through the pinyin voice (the Debian Mandarin dictionary is partial), Japanese
in kana. Each clip is then encoded in a different phone format with PyAV.

    .venv/bin/python scripts/make_samples.py
"""

from __future__ import annotations

import io
import json
import subprocess
import wave
from pathlib import Path

import numpy as np

from vomage_dagster.testing.audio_files import encode

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

# name, extension, espeak voice, text spoken, expected transcript, metadata
CLIPS = [
    ("en_joy", "m4a", "en-us",
     "I'm so happy today! The sun is shining and I just got great news from my best friend.",
     "I'm so happy today! The sun is shining and I just got great news from my best friend.",
     {"user": "demo-alice", "tz": "America/Los_Angeles", "lat": "47.61", "lon": "-122.33"}),
    ("zh_sad", "webm", "cmn-latn-pinyin",
     "jin1 tian1 wo3 hen3 nan2 guo4. xia4 yu3 le, wo3 de peng2 you3 li2 kai1 le zhe4 ge4 cheng2 shi4.",
     "今天我很难过。下雨了，我的朋友离开了这个城市。",
     {"user": "demo-bo", "tz": "Asia/Shanghai", "lat": "31.23", "lon": "121.47", "lang": "zh-CN"}),
    ("en_angry", "mp3", "en-us",
     "I am really angry. My landlord raised the rent again and nobody answers my calls.",
     "I am really angry. My landlord raised the rent again and nobody answers my calls.",
     {"user": "demo-carol", "tz": "Europe/London", "lat": "51.51", "lon": "-0.13"}),
    ("ja_tired", "ogg", "ja",
     "きょうは とても つかれました。 しごとが おおすぎて かなしいです。",
     "今日はとても疲れました。仕事が多すぎて悲しいです。",
     {"user": "demo-daiki", "tz": "Asia/Tokyo", "lat": "35.68", "lon": "139.69", "lang": "ja-JP"}),
    ("en_neutral", "3gp", "en-us",
     "I took the bus to work this morning and had a sandwich for lunch.",
     "I took the bus to work this morning and had a sandwich for lunch.",
     {"user": "demo-erin", "tz": "Europe/Berlin"}),
]


def speak(voice: str, text: str) -> tuple[np.ndarray, int]:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0, rate


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    manifest = []
    for name, ext, voice, spoken, expected, meta in CLIPS:
        samples, rate = speak(voice, spoken)
        pad = np.zeros(int(0.3 * rate), dtype=np.float32)
        data = encode(np.concatenate([pad, samples, pad]), rate, ext)
        (SAMPLES / f"{name}.{ext}").write_bytes(data)
        manifest.append({"file": f"{name}.{ext}", "expected_text": expected, **meta})
        print(f"{name}.{ext}: {len(data)} bytes")
    (SAMPLES / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The app's fast path, simulated: stream while "recording", upload at the stop, then the
transcript beside it. The benchmark's simulated app and the streaming tests use it.

1. The app opens the presigned streaming URL the platform gave it and streams 16 kHz PCM
   at real-time pace while the user speaks (here: a file's audio, decoded).
2. At the end of speech it uploads the recording at once (S3, object metadata
   `transcript: streaming`), while Transcribe sends the last final results, and tells the
   ingest the upload is stored (as the live view does for the page), so nothing waits for
   S3's own notification.
3. When the stream closes it puts the sidecar (`domain/streamed.py`). If the stream failed
   it puts none, and the platform falls back to the batch job after `SIDECAR_WAIT_S`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vomage_dagster.domain import streamed
from vomage_dagster.domain.audio import decode
from vomage_dagster.domain.keys import new_recording_id
from vomage_dagster.local.client.uploads import upload_file
from vomage_dagster.resources.build import build_resources
from vomage_dagster.settings import Settings
from vomage_dagster.streaming.client import StreamError, StreamResult, pcm16, stream
from vomage_dagster.streaming.urls import stream_url


@dataclass
class Spoken:
    recording_id: str
    end_of_speech: float  # time.monotonic() of the last audio frame
    uploaded_at: float  # …when the audio upload returned
    transcript_at: float | None  # …when the stream's final results were in (None: stream failed)
    transcript: str
    language: str
    error: str = ""


def _put_sidecar(settings: Settings, user_id: str, rid: str, result: StreamResult) -> None:
    doc = streamed.build(rid, result.language, result.finals, result.audio_seconds)
    store = build_resources(settings)["store"]
    store.put_bytes(streamed.sidecar_key(user_id, rid), json.dumps(doc, ensure_ascii=False).encode(),
                    "application/json")


def speak(settings: Settings, path: Path, user_id: str, *, language: str | None = None,
          realtime: bool = True, sidecar: bool = True, cut_after_s: float | None = None,
          **meta: str) -> Spoken:
    """Stream `path`'s audio, upload it at the end of speech, then put the sidecar."""
    rid = new_recording_id()
    pcm = pcm16(decode(path.read_bytes()).samples)
    uploaded = threading.Event()
    stamps: dict[str, float] = {}

    def upload() -> None:
        upload_file(settings, path, user_id, recording_id=rid, streamed=True, lang=language, notify=True, **meta)
        stamps["uploaded"] = time.monotonic()
        uploaded.set()

    def at_end() -> None:
        if "started" not in stamps:  # once, whether the stream ended or broke
            stamps["started"] = time.monotonic()
            threading.Thread(target=upload, daemon=True).start()

    result: StreamResult | None = None
    error = ""
    try:
        result = stream(stream_url(settings, user_id, language), pcm, realtime=realtime,
                        cut_after_s=cut_after_s, on_end_of_audio=at_end)
    except StreamError as exc:
        error = exc.code
        at_end()  # the stream broke: the recording is uploaded all the same
    uploaded.wait(60)
    end = result.end_of_audio if result else time.monotonic()
    if result is not None and sidecar and result.finals:
        _put_sidecar(settings, user_id, rid, result)
    return Spoken(rid, end, stamps.get("uploaded", end), result.final_at if result else None,
                  result.transcript if result else "", result.language if result else "", error)


def speak_as_on_aws(settings: Settings, path: Path, user_id: str, final_delay_s: float, *,
                    language: str | None = None, **meta: str) -> Spoken:
    """`speak`, with Transcribe's timing instead of the local Whisper's.

    On AWS the streaming transcription runs on Transcribe's machines while the user
    speaks, and its last final result comes `final_delay_s` after the end of speech (the
    latency profile's figure). Here the words are the local endpoint's (the clip is
    streamed once beforehand, unpaced), and only their arrival is simulated: at the end
    of speech the upload starts, and the sidecar is put `final_delay_s` later. The
    platform's own path (ingest, run, stages) is real and runs on this machine alone, as
    on AWS."""
    rid = new_recording_id()
    heard = stream(stream_url(settings, user_id, language), pcm16(decode(path.read_bytes()).samples),
                   realtime=False)
    end = time.monotonic()
    uploading = threading.Thread(target=upload_file, args=(settings, path, user_id),
                                 kwargs={"recording_id": rid, "streamed": True, "lang": language,
                                         "notify": True, **meta})
    uploading.start()
    time.sleep(max(0.0, end + final_delay_s - time.monotonic()))
    transcript_at = time.monotonic()
    _put_sidecar(settings, user_id, rid, heard)
    uploading.join()
    return Spoken(rid, end, time.monotonic(), transcript_at, heard.transcript, heard.language)

"""A small Transcribe streaming client: PCM in, partial and final results out.

It is what the app does while the user speaks (stream 16 kHz PCM in short frames, then
an empty frame to end), used by the benchmark's simulated app and `vomage stream`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vomage_dagster.domain.streamed import results_text
from vomage_dagster.streaming import event_stream
from vomage_dagster.streaming.presign import SAMPLE_RATE

FRAME_S = 0.1  # 100 ms of audio per frame, as AWS's examples send
BYTES_PER_S = SAMPLE_RATE * 2


class StreamError(Exception):
    """The stream was refused or ended with an exception frame: `code` says which."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass
class StreamResult:
    language: str = ""
    finals: list[dict] = field(default_factory=list)
    partials: int = 0
    audio_seconds: float = 0.0
    end_of_audio: float = 0.0  # time.monotonic() when the last audio frame was sent
    final_at: float = 0.0  # …and when the stream closed with every final result in

    @property
    def transcript(self) -> str:
        return results_text(self.language, self.finals)

    @property
    def final_delay_s(self) -> float:
        return self.final_at - self.end_of_audio


def pcm16(samples) -> bytes:
    """Float samples in [-1, 1] → 16-bit little-endian PCM."""
    import numpy as np

    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def stream(url: str, pcm: bytes, realtime: bool = True, on_result: Callable[[dict], None] | None = None,
           timeout_s: float = 30.0, cut_after_s: float | None = None,
           on_end_of_audio: Callable[[], None] | None = None) -> StreamResult:
    """Stream `pcm` (16 kHz, 16-bit mono) to `url` and collect the results.

    `realtime` paces the frames as a microphone would; `cut_after_s` drops the connection
    after that much audio without the closing frame (a stream cut mid-way);
    `on_end_of_audio` runs when the last frame is out (the app starts its upload there)."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    result = StreamResult()
    failure: list[StreamError] = []
    try:
        ws = connect(url, open_timeout=10, max_size=2**20, compression=None)
    except InvalidStatus as exc:
        body = exc.response.body.decode("utf-8", "replace")
        raise StreamError(_code_of(body), body, exc.response.status_code) from exc

    def read() -> None:
        try:
            for raw in ws:
                msg = event_stream.decode(raw)
                if msg.message_type == "exception":
                    failure.append(StreamError(msg.event_type, msg.json().get("Message", "")))
                    return
                for r in msg.json().get("Transcript", {}).get("Results", []):
                    result.language = r.get("LanguageCode") or result.language
                    if r.get("IsPartial"):
                        result.partials += 1
                    else:
                        result.finals.append(r)
                    if on_result:
                        on_result(r)
        except ConnectionClosed:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    step = int(BYTES_PER_S * FRAME_S)
    started = time.monotonic()
    try:
        for offset in range(0, len(pcm), step):
            if cut_after_s is not None and offset >= cut_after_s * BYTES_PER_S:
                ws.close()
                reader.join(timeout_s)
                raise StreamError("StreamCut", f"the stream was cut after {cut_after_s} s")
            ws.send(event_stream.audio_event(pcm[offset:offset + step]))
            if realtime:
                time.sleep(max(0.0, started + (offset + step) / BYTES_PER_S - time.monotonic()))
        result.end_of_audio = time.monotonic()
        result.audio_seconds = len(pcm) / BYTES_PER_S
        ws.send(event_stream.audio_event(b""))
        if on_end_of_audio:
            on_end_of_audio()
    except ConnectionClosed:
        pass
    reader.join(timeout_s)
    result.final_at = time.monotonic()
    ws.close()
    if failure:
        raise failure[0]
    if reader.is_alive():
        raise StreamError("Timeout", f"no final result within {timeout_s} s")
    return result


def _code_of(body: str) -> str:
    import json

    try:
        return json.loads(body).get("code") or "Refused"
    except ValueError:
        return "Refused"

"""Decode any mobile recording to 16 kHz mono and decide whether it is usable.

PyAV carries FFmpeg inside its wheel, so m4a/AAC, webm/Opus, ogg, mp3, wav and 3gp all
decode with no system package. Validation errors carry the app's error codes and are
final: the same bytes will fail the same way every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .errors import NO_SPEECH, TOO_LARGE, TOO_LONG, TOO_SHORT, UNDECODABLE, ProcessingError
from .hashing import sha256_bytes

SAMPLE_RATE = 16_000
MIN_SECONDS = 1.0
MAX_SECONDS = 300.0
MAX_BYTES = 50 * 1024 * 1024
# A 30 ms frame louder than -40 dBFS counts as sound; a recording with none is silent.
_FRAME = 480
_SOUND_RMS = 0.01


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 in [-1, 1], mono, SAMPLE_RATE
    duration_s: float
    source_format: str
    source_codec: str
    sha256: str

    @property
    def peak_frame_rms(self) -> float:
        return frame_rms(self.samples).max(initial=0.0)


def frame_rms(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // _FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = samples[: n * _FRAME].reshape(n, _FRAME)
    return np.sqrt(np.mean(frames * frames, axis=1))


def decode(data: bytes, max_seconds: float = MAX_SECONDS) -> DecodedAudio:
    """Decode bytes of any container to 16 kHz mono float32.

    Stops decoding just past `max_seconds` so a very long upload costs little; the
    duration is then reported as over the limit by `validate`.
    """
    import av  # FFmpeg bindings: imported here so importing the domain stays cheap

    if not data:
        raise ProcessingError(UNDECODABLE, "the file is empty")
    if len(data) > MAX_BYTES:
        raise ProcessingError(TOO_LARGE, f"the file is {len(data)} bytes, over {MAX_BYTES}")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise ProcessingError(UNDECODABLE, f"not a recognisable audio file ({exc})") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise ProcessingError(UNDECODABLE, "the file has no audio stream")
        stream = streams[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        total = 0
        limit = int((max_seconds + 1) * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if total > limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError) as exc:
            raise ProcessingError(UNDECODABLE, f"the audio could not be decoded ({exc})") from exc
        fmt = container.format.name
        codec = stream.codec_context.name
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return DecodedAudio(
        samples=samples,
        duration_s=len(samples) / SAMPLE_RATE,
        source_format=fmt,
        source_codec=codec,
        sha256=sha256_bytes(data),
    )


def validate(audio: DecodedAudio) -> None:
    """Raise the app's error for a recording that cannot be processed."""
    if audio.duration_s < MIN_SECONDS:
        raise ProcessingError(
            TOO_SHORT, f"the recording lasts {audio.duration_s:.2f} s; at least {MIN_SECONDS:.0f} s"
        )
    if audio.duration_s > MAX_SECONDS:
        raise ProcessingError(TOO_LONG, f"the recording lasts over {MAX_SECONDS:.0f} s")
    if audio.peak_frame_rms < _SOUND_RMS:
        raise ProcessingError(NO_SPEECH, "the recording is silent")


def decode_and_validate(data: bytes) -> DecodedAudio:
    audio = decode(data)
    validate(audio)
    return audio

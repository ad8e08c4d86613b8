"""Decode any mobile recording to 16 kHz mono and decide whether it is usable.

PyAV carries FFmpeg inside its wheel, so m4a/AAC, mp4, webm/Opus, ogg, mp3, wav, flac,
amr and 3gp all decode with no system package: every container Amazon Transcribe takes
(amr, flac, m4a, mp3, mp4, ogg, wav, webm), and what phones record besides. Validation
errors carry the app's error codes and are final: the same bytes will fail the same way every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from vomage_dagster.domain.errors import NO_SPEECH, TOO_LARGE, TOO_LONG, TOO_SHORT, UNDECODABLE, ProcessingError
from vomage_dagster.domain.hashing import sha256_bytes

SAMPLE_RATE = 16_000
MIN_SECONDS = 1.0
MAX_SECONDS = 300.0
MAX_BYTES = 50 * 1024 * 1024
# A 30 ms frame louder than -40 dBFS counts as sound; a recording with none is silent.
_FRAME = 480
SOUND_RMS = 0.01


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


# What a phone sends: the demuxer is chosen from the file's first bytes, never probed, so
# a playlist, concat list, SDP or URL file never reaches a demuxer that opens other files.
MOBILE_CODECS = {
    "aac", "aac_latm", "opus", "libopus", "vorbis", "mp3", "mp3float", "amrnb", "amr_nb", "amrwb",
    "amr_wb", "libopencore_amrnb", "libopencore_amrwb", "pcm_s16le", "pcm_s24le", "pcm_s32le",
    "pcm_f32le", "pcm_u8", "pcm_mulaw", "pcm_alaw", "alac", "flac",
}
MAX_SAMPLE_RATE = 192_000
MIN_SAMPLE_RATE = 4_000
MAX_CHANNELS = 8
# Decoding work is bounded as it goes: frames per second of audio (Opus's shortest frame,
# 2.5 ms, is 400 a second), and the decoding thread's CPU time.
MAX_FRAMES_PER_SECOND = 500
FRAME_SLACK = 2_000
MAX_DECODE_CPU_S = 15.0
_MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def sniff(data: bytes) -> str:
    """The FFmpeg demuxer for a mobile audio container, from its magic bytes; else UNDECODABLE."""
    head = data[:16]
    if head[4:8] in _MP4_ATOMS:
        return "mov"  # m4a, mp4, 3gp
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"  # webm
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # ADTS has layer bits 00
    raise ProcessingError(UNDECODABLE, "not a mobile audio file (m4a, mp4, webm, ogg, mp3, wav, flac, 3gp, aac, amr)")


def _refuse(message: str) -> ProcessingError:
    return ProcessingError(UNDECODABLE, message)


def decode(data: bytes, max_seconds: float = MAX_SECONDS) -> DecodedAudio:
    """Decode bytes of a mobile audio container to 16 kHz mono float32.

    Stops decoding just past `max_seconds` so a very long upload costs little; the
    duration is then reported as over the limit by `validate`. Work is bounded: the
    demuxer comes from `sniff`, only the first audio stream is demuxed (video and cover
    art packets are dropped unread by the decoder), and too many frames for the audio
    they carry, or too much CPU time, ends the decode as UNDECODABLE.
    """
    import time

    import av  # FFmpeg bindings: imported here so importing the domain stays cheap

    if not data:
        raise ProcessingError(UNDECODABLE, "the file is empty")
    if len(data) > MAX_BYTES:
        raise ProcessingError(TOO_LARGE, f"the file is {len(data)} bytes, over {MAX_BYTES}")
    demuxer = sniff(data)
    started = time.thread_time()
    try:
        # No nested opens: whatever a demuxer might reference, no protocol is allowed.
        container = av.open(io.BytesIO(data), mode="r", format=demuxer,
                            options={"protocol_whitelist": "none", "enable_drefs": "0"})
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise _refuse(f"not a readable {demuxer} audio file ({type(exc).__name__})") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise ProcessingError(UNDECODABLE, "the file has no audio stream")
        stream = streams[0]
        ctx = stream.codec_context
        if ctx.name not in MOBILE_CODECS:
            raise _refuse(f"the audio codec {ctx.name!r} is not one phones record with")
        rate, channels = int(ctx.sample_rate or 0), int(ctx.channels or 0)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise _refuse(f"a sample rate of {rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise _refuse(f"{channels} audio channels is outside 1–{MAX_CHANNELS}")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        total = frames = 0
        limit = int((max_seconds + 1) * SAMPLE_RATE)
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frames += 1
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().reshape(-1)
                        chunks.append(chunk)
                        total += len(chunk)
                    if frames > FRAME_SLACK + MAX_FRAMES_PER_SECOND * total / SAMPLE_RATE:
                        raise _refuse(f"{frames} frames for {total / SAMPLE_RATE:.1f} s of audio: "
                                      "a stream of tiny packets")
                if time.thread_time() - started > MAX_DECODE_CPU_S:
                    raise _refuse(f"decoding took over {MAX_DECODE_CPU_S:.0f} s of CPU")
                if total > limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError, MemoryError) as exc:
            raise _refuse(f"the audio could not be decoded ({type(exc).__name__}); "
                          "the file may be truncated or corrupt") from exc
        fmt = container.format.name
        codec = ctx.name
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
    if audio.peak_frame_rms < SOUND_RMS:
        raise ProcessingError(NO_SPEECH, "the recording is silent")


def decode_and_validate(data: bytes) -> DecodedAudio:
    audio = decode(data)
    validate(audio)
    return audio

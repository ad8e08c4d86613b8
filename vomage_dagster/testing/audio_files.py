"""Encode samples into the containers phones send (for the bundled samples and tests)."""

from __future__ import annotations

import io

import numpy as np

# extension → (PyAV container format, codec, sample rate the codec wants)
FORMATS = {
    "m4a": ("ipod", "aac", 44_100),
    "webm": ("webm", "libopus", 48_000),
    "ogg": ("ogg", "libopus", 48_000),
    "mp3": ("mp3", "libmp3lame", 44_100),
    "wav": ("wav", "pcm_s16le", 16_000),
    "3gp": ("3gp", "libopencore_amrnb", 8_000),
    "mp4": ("mp4", "aac", 44_100),
    "flac": ("flac", "flac", 44_100),
    "amr": ("amr", "libopencore_amrnb", 8_000),
}


def encode(samples: np.ndarray, rate: int, extension: str) -> bytes:
    """Mono float32 samples at `rate` → the bytes of a file of that extension."""
    import av

    fmt, codec, out_rate = FORMATS[extension]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        if codec == "libopencore_amrnb":
            stream.bit_rate = 12_200
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        pcm = np.clip(samples, -1, 1).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
        frame.sample_rate = rate
        # Encoders want frames of exactly their frame size (the last may be shorter).
        fifo = av.AudioFifo()
        for out in resampler.resample(frame) + resampler.resample(None):
            fifo.write(out)
        size = stream.codec_context.frame_size or 1024
        while fifo.samples:
            chunk = fifo.read(min(size, fifo.samples))
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def tone(seconds: float, rate: int = 16_000, freq: float = 440.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int = 16_000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)

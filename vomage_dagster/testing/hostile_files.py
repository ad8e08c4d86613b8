"""Uploads that attack the decoder, one builder per class (for the tests and the chaos soak).

Each returns the bytes a hostile or broken client could upload as a recording. The
expected outcome of every class is a final `failed` with a reason, or (cover art, video
beside the audio) a normal decode of the audio alone — never unbounded work.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from vomage_dagster.testing.audio_files import encode, tone


def hls_playlist() -> bytes:
    """An HLS playlist naming a file of the worker's filesystem."""
    return b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"


def concat_list() -> bytes:
    return b"ffconcat version 1.0\nfile '/etc/hostname'\nfile 'http://127.0.0.1:1/x.wav'\n"


def sdp_session() -> bytes:
    """An SDP description: FFmpeg would open network sockets for it."""
    return b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n"


def png_image() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


def video_only() -> bytes:
    """An MP4 with a video stream and no audio."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def wav_header(rate: int, channels: int, seconds: float = 2.0, bits: int = 16) -> bytes:
    """A WAV whose header claims `rate` and `channels` (data: `seconds` of silence at 8 kHz mono)."""
    data = bytes(int(seconds * 8_000) * 2)
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def tiny_packets(seconds: float = 60.0, rate: int = 8_000) -> bytes:
    """Matroska PCM with one sample per packet: a valid minute that costs a packet per sample."""
    import av

    buf = io.BytesIO()
    samples = (3000 * np.sin(np.arange(int(seconds * rate)) / 10)).astype(np.int16)
    with av.open(buf, mode="w", format="matroska") as c:
        s = c.add_stream("pcm_s16le", rate=rate)
        s.layout = "mono"
        for i, value in enumerate(samples):
            frame = av.AudioFrame.from_ndarray(np.array([[value]], np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def big_cover_mp3(cover_mb: int = 20) -> bytes:
    """A short spoken-length MP3 behind an ID3 tag holding a `cover_mb` MB picture."""
    audio = encode(tone(3.0, 16_000), 16_000, "mp3")
    picture = b"\x89PNG\r\n\x1a\n" + bytes(cover_mb * 1024 * 1024)
    frame = b"\x00image/png\x00\x03cover\x00" + picture
    size = len(frame)
    header = b"APIC" + struct.pack(">I", size) + b"\x00\x00"
    body = header + frame
    n = len(body)
    synchsafe = bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
    # ID3v2.3: frame sizes are plain integers, the tag size is synchsafe.
    return b"ID3\x03\x00\x00" + synchsafe + body + audio


def video_with_audio(seconds: float = 3.0) -> bytes:
    """An MP4 whose large video frames sit beside a short AAC track: the audio alone is decoded."""
    import av

    buf = io.BytesIO()
    rng = np.random.default_rng(3)
    with av.open(buf, mode="w", format="mp4") as c:
        video = c.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt, video.bit_rate = 1280, 720, "yuv420p", 20_000_000
        audio = c.add_stream("aac", rate=44_100)
        audio.layout = "mono"
        for _ in range(int(seconds * 10)):
            img = rng.integers(0, 255, (720, 1280, 3), np.uint8)
            for p in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        pcm = tone(seconds, 44_100).reshape(1, -1)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=44_100)
        fifo = av.AudioFifo()
        f = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
        f.sample_rate = 44_100
        for out in resampler.resample(f):
            fifo.write(out)
        while fifo.samples:
            for p in audio.encode(fifo.read(min(1024, fifo.samples))):
                c.mux(p)
        for stream in (video, audio):
            for p in stream.encode(None):
                c.mux(p)
    return buf.getvalue()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` of a file, as an upload cut off mid-way."""
    return data[: max(1, int(len(data) * keep))]

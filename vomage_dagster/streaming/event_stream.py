"""AWS event-stream frames, the binary messages Transcribe streaming speaks.

A frame is: total length, headers length, a CRC32 of those eight bytes, the headers
(name, type 7 = string, value), the payload, a CRC32 of everything before it. botocore
decodes and checks them (`botocore.eventstream`); it has no encoder, so that half is here.
"""

from __future__ import annotations

import binascii
import json
import struct
from dataclasses import dataclass

from botocore.eventstream import EventStreamBuffer, ParserError

STRING = 7
# Transcribe's own limits: a frame of audio is at most 32 KiB (about 1 s of 16 kHz PCM).
MAX_AUDIO_FRAME = 32 * 1024


class FrameError(ValueError):
    """A frame that is not a well-formed event-stream message."""


@dataclass(frozen=True)
class Message:
    headers: dict[str, str]
    payload: bytes

    @property
    def message_type(self) -> str:
        return self.headers.get(":message-type", "")

    @property
    def event_type(self) -> str:
        return self.headers.get(":event-type") or self.headers.get(":exception-type", "")

    def json(self) -> dict:
        return json.loads(self.payload or b"{}")


def encode(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame with string headers."""
    head = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", STRING, len(raw_value)) + raw_value
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack("!I", binascii.crc32(body))


def decode(frame: bytes) -> Message:
    """Exactly one frame → its message; FrameError for anything else (bad CRC, lengths,
    trailing bytes, non-string headers)."""
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    try:
        messages = list(buffer)
    except ParserError as exc:
        raise FrameError(f"malformed event-stream frame: {exc}") from exc
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed event-stream frame ({type(exc).__name__})") from exc
    if len(messages) != 1 or messages[0].prelude.total_length != len(frame):
        raise FrameError("a WebSocket message must carry exactly one event-stream frame")
    msg = messages[0]
    if not all(isinstance(v, str) for v in msg.headers.values()):
        raise FrameError("event-stream headers must be strings")
    return Message(dict(msg.headers), bytes(msg.payload))


def audio_event(pcm: bytes) -> bytes:
    """An AudioEvent; an empty one ends the stream."""
    return encode({":message-type": "event", ":event-type": "AudioEvent",
                   ":content-type": "application/octet-stream"}, pcm)


def transcript_event(results: list[dict]) -> bytes:
    payload = json.dumps({"Transcript": {"Results": results}}, ensure_ascii=False).encode()
    return encode({":message-type": "event", ":event-type": "TranscriptEvent",
                   ":content-type": "application/json"}, payload)


def exception_event(kind: str, message: str) -> bytes:
    """What Transcribe sends before closing: BadRequestException, LimitExceededException…"""
    return encode({":message-type": "exception", ":exception-type": kind,
                   ":content-type": "application/json"}, json.dumps({"Message": message}).encode())

"""A recording's trace, named by the recording itself.

Every process that touches a recording (the live view that mints its id, the ingest, the
run, the sensors that fail it) must put its spans in one trace, under one root. Rather
than carry a context through S3 (an upload cannot), each process derives the trace id
and the root span id from the recording id: the same answer everywhere, with nothing to
lose on the way. The spans each process makes are children of that root (or of the
parent a queue message or a run's tags carried), and the root itself, the recording's
life from upload to its final state, is written once, by whoever ends it.

Trace ids are X-Ray compatible for the ids the platform and the app mint
(`rec-YYYYMMDDHHMMSS-…`): the first 32 bits are that epoch second, the other 96 bits a
hash of the id. An id of another shape gets hash bits there too (the same in every
process, but not a time X-Ray accepts). Sampling is decided from the trace id alone, so every
process decides the same way without being told.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

_STAMPED = re.compile(r"rec-(\d{14})-")


def _epoch(recording_id: str) -> int:
    found = _STAMPED.match(recording_id)
    if found:
        try:
            return int(dt.datetime.strptime(found.group(1), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp())
        except ValueError:
            pass
    return int.from_bytes(_digest(recording_id, "epoch")[:4], "big")


def _digest(recording_id: str, salt: str) -> bytes:
    return hashlib.sha256(f"{salt}:{recording_id}".encode()).digest()


def trace_id(recording_id: str) -> int:
    """The recording's trace id (128 bits, X-Ray compatible)."""
    return (_epoch(recording_id) << 96) | int.from_bytes(_digest(recording_id, "trace")[:12], "big")


def root_span_id(recording_id: str) -> int:
    """The span id of the recording's root span (its life from upload to final)."""
    return int.from_bytes(_digest(recording_id, "root")[:8], "big") or 1


def xray_id(trace: int) -> str:
    """`1-<8 hex epoch>-<24 hex>`: the id X-Ray shows and BatchGetTraces takes."""
    text = f"{trace:032x}"
    return f"1-{text[:8]}-{text[8:]}"


def sampled(trace: int, ratio: float) -> bool:
    """The head decision, the same in every process: the trace id's low 64 bits below the
    ratio's share of their range (as OpenTelemetry's TraceIdRatioBased decides)."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return (trace & ((1 << 64) - 1)) < int(ratio * (1 << 64))

"""When an automatic retry starts: exponential backoff with a little jitter, bounded.

The n-th automatic retry of a recording waits `base × 3^(n-1)` seconds (5 s, then 15 s
by default), ±20 % so that the recordings one outage failed together do not all come
back at the same instant, and never longer than SQS can delay a message (15 min). The
jitter comes from the recording and the retry's number: the same retry always waits the
same, which the tests can hold it to.
"""

from __future__ import annotations

from vomage_dagster.domain.hashing import sha256_text

MAX_DELAY_S = 900  # SQS's longest DelaySeconds
GROWTH = 3.0
JITTER = 0.2


def delay_s(number: int, base_s: float, recording_id: str) -> int:
    """Seconds before automatic retry `number` (1, 2, …) of `recording_id` starts."""
    if number < 1:
        raise ValueError("retries count from 1")
    spread = int(sha256_text("retry", recording_id, str(number))[:8], 16) / 0xFFFFFFFF  # 0..1
    seconds = base_s * GROWTH ** (number - 1) * (1 - JITTER + 2 * JITTER * spread)
    return int(min(MAX_DELAY_S, max(1, round(seconds))))

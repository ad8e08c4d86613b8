"""The seconds each stage took, for the most recent recordings of this environment, in Redis.

Each complete recording adds its stages' durations (`estimates.durations`) to one list
per stage, `stage-seconds:<stage>`, cut to the last `KEEP` and kept `TTL_S` since the
last addition (an environment idle for a week starts again from the typical values).
The medians are read at most every `REFRESH_S` per process: an estimate costs no
round trip on the status's path. Redis is a cache here as everywhere: unreachable, the
estimates fall back to the typical values and nothing fails.
"""

from __future__ import annotations

import logging
import threading
import time

from vomage_dagster.domain import estimates
from vomage_dagster.resources.cache import Cache

log = logging.getLogger(__name__)

KIND = "stage-seconds"
KEEP = 50
TTL_S = 7 * 24 * 3600
REFRESH_S = 30.0

_lock = threading.Lock()
_read: dict[str, tuple[float, dict[str, float]]] = {}  # redis url → (read at, medians)


class StageTimings:
    def __init__(self, cache: Cache):
        self.cache = cache

    def record(self, item: dict) -> dict[str, float]:
        """Add a complete item's stage durations; what was added."""
        import redis

        spans = estimates.durations(item)
        if not spans:
            return {}
        try:
            pipe = self.cache.redis.pipeline(transaction=False)
            for stage, seconds in spans.items():
                key = f"{KIND}:{stage}"
                pipe.lpush(key, seconds)
                pipe.ltrim(key, 0, KEEP - 1)
                pipe.expire(key, TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("stage timings not recorded: %s", exc)
        return spans

    def samples(self) -> dict[str, list[float]]:
        import redis

        try:
            pipe = self.cache.redis.pipeline(transaction=False)
            for stage in estimates.TIMED:
                pipe.lrange(f"{KIND}:{stage}", 0, KEEP - 1)
            found = pipe.execute()
        except redis.RedisError as exc:
            log.warning("stage timings not read: %s", exc)
            return {}
        return {stage: [float(v) for v in values] for stage, values in zip(estimates.TIMED, found, strict=True)}

    def medians(self, fresh: bool = False) -> dict[str, float]:
        """Each stage's recent median (typical values where too few were measured)."""
        now = time.monotonic()
        with _lock:
            cached = _read.get(self.cache.redis_url)
        if cached is not None and not fresh and now - cached[0] < REFRESH_S:
            return cached[1]
        found = estimates.medians(self.samples())
        with _lock:
            _read[self.cache.redis_url] = (now, found)
        return found

    def seconds_left(self, stage: str) -> float:
        return estimates.seconds_left(stage, self.medians())

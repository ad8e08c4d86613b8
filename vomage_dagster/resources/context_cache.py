"""The weather cache of the product plan: `context:{place}:{half hour}` in Redis.

An observed weather is kept for the half hour it stands for (`lifetimes`: 30 min), so the
recordings of one place cell and half hour ask the provider once. A provider that could
not answer is remembered apart, for `UNKNOWN_TTL_S` only (`context-unknown:…`): the next
recordings of that cell say `unknown` at once instead of each waiting for the timeout,
and the provider is asked again soon after. An unknown weather is never kept as if it
were the cell's weather.
"""

from __future__ import annotations

import datetime as dt
import logging

from vomage_dagster.domain.context import Weather, time_bucket, weather_from_dict
from vomage_dagster.resources.cache import Cache

log = logging.getLogger(__name__)

KIND = "context"
UNKNOWN_KIND = "context-unknown"
UNKNOWN_TTL_S = 120


def context_key(place: str, when_utc: dt.datetime) -> str:
    """`{place}:{half hour}`: the key after the kind, as the cache warming job writes it."""
    return f"{place}:{time_bucket(when_utc)}"


class ContextCache:
    def __init__(self, cache: Cache):
        self.cache = cache

    def get(self, key: str) -> Weather | None:
        """The cell's observed weather for the half hour; None on a miss (or a stored
        value that is not an observation)."""
        found = self.cache.get_json(KIND, key)
        if not isinstance(found, dict):
            return None
        try:
            weather = weather_from_dict(found)
        except TypeError:
            return None
        return weather if weather.known else None

    def put(self, key: str, weather: Weather) -> None:
        if weather.known:
            self.cache.set_json(KIND, key, weather.__dict__)
        else:
            self._remember_unknown(key, weather.reason or "unknown")

    def recent_failure(self, key: str) -> str | None:
        """Why the provider could not answer for this cell a moment ago, if it could not."""
        import redis

        try:
            found = self.cache.redis.get(f"{UNKNOWN_KIND}:{key}")
        except redis.RedisError:
            return None
        return found.decode("utf-8", "replace") if found else None

    def _remember_unknown(self, key: str, reason: str) -> None:
        import redis

        try:
            self.cache.redis.set(f"{UNKNOWN_KIND}:{key}", reason[:200], ex=UNKNOWN_TTL_S)
        except redis.RedisError as exc:  # a cache is never a dependency
            log.warning("cache set %s failed: %s", UNKNOWN_KIND, exc)

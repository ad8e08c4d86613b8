"""A per-user rate limit on the live view's API: one token's flood of calls gets 429 while
everyone else is served as before.

A token bucket per user id (`rate` calls a second, bursts of `burst`). The page's own
pace, a handful of calls when it opens (the user, the feed, a stream grant, an upload
form, the notice) and a status read now and then, never comes near the defaults
(`Settings.api_rate_per_s`, `api_burst`). Kept in the process, with no lookup: behind the
load balancer each task limits on its own, so a user spread over N tasks gets at most N
times the rate, still bounded. Buckets of the users not seen for the longest are dropped
first past `max_users`, so memory stays bounded however many users call.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_users: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a rate above 0 and a burst of at least 1")
        self.rate, self.burst, self.max_users, self.clock = rate, float(burst), max_users, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # user → (tokens, at)

    def take(self, user_id: str) -> float:
        """0 if the call may go ahead (one token taken), else the seconds until it may."""
        now = self.clock()
        tokens, at = self._buckets.pop(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[user_id] = (tokens, now)
        while len(self._buckets) > self.max_users:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait_s: float) -> str:
    """HTTP's Retry-After: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))

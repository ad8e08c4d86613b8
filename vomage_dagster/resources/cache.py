"""Redis: the hot cache in front of every model call, and live status.

A cache is an optimisation, never a dependency: if Redis cannot be reached, reads miss
and writes are dropped with a warning, and processing carries on.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from vomage_dagster.domain import lifetimes
from vomage_dagster.telemetry.calls import redis_call

log = logging.getLogger(__name__)

# Key patterns and lifetimes from the product plan, kept with every other
# lifetime in domain/lifetimes.py.
TTL_SECONDS = lifetimes.REDIS_TTL_SECONDS


_errors = {"count": 0}  # process-wide: Dagster builds a fresh resource for every run


def redis_tls_options(url: str, password: str | None, ca_file: str | None) -> dict:
    """redis-py options for the URL: the token, and for rediss:// a verified certificate."""
    options: dict[str, Any] = {"password": password} if password else {}
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        if ca_file:
            options["ssl_ca_certs"] = ca_file
    return options


def cache_errors() -> int:
    """How many cache calls failed in this process (Redis down counts here)."""
    return _errors["count"]


class Cache(ConfigurableResource):
    """Redis with the plan's key patterns: `<kind>:<id>` and a lifetime per kind."""

    redis_url: str
    socket_timeout_s: float = 2.0
    # The AUTH token: pass EnvVar("REDIS_PASSWORD") so the UI shows the name, not the value.
    password: str | None = None
    ca_file: str | None = None  # a private CA for rediss:// (ElastiCache's is public)
    _client: Any = PrivateAttr(default=None)

    @property
    def redis(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.redis_url,
                socket_timeout=self.socket_timeout_s,
                socket_connect_timeout=self.socket_timeout_s,
                **redis_tls_options(self.redis_url, self.password, self.ca_file),
            )
        return self._client

    def _failed(self, op: str, key: str, exc: Exception) -> None:
        _errors["count"] += 1
        log.warning("cache %s %s failed, carrying on without cache: %s", op, key.split(":")[0], exc)

    @redis_call("GET")
    def get_json(self, kind: str, key: str) -> Any | None:
        import redis

        full = f"{kind}:{key}"
        try:
            raw = self.redis.get(full)
        except redis.RedisError as exc:
            self._failed("get", full, exc)
            return None
        return None if raw is None else json.loads(raw)

    @redis_call("PUBLISH")
    def publish(self, channel: str, value: Any) -> bool:
        """Publish JSON on a pub/sub channel (the app's WebSocket layer subscribes)."""
        import redis

        try:
            self.redis.publish(channel, json.dumps(value, ensure_ascii=False, default=str))
            return True
        except redis.RedisError as exc:
            self._failed("publish", channel, exc)
            return False

    @redis_call("SET")
    def set_json(self, kind: str, key: str, value: Any) -> bool:
        import redis

        full = f"{kind}:{key}"
        try:
            self.redis.set(full, json.dumps(value, ensure_ascii=False, default=str),
                           ex=TTL_SECONDS[kind])
            return True
        except redis.RedisError as exc:
            self._failed("set", full, exc)
            return False

    @redis_call("DEL")
    def delete(self, kind: str, key: str) -> bool:
        """Drop one key (erasure); False if Redis could not be reached."""
        import redis

        try:
            self.redis.delete(f"{kind}:{key}")
            return True
        except redis.RedisError as exc:
            self._failed("delete", f"{kind}:{key}", exc)
            return False

"""Short-lived signed tokens: which user an app request speaks for.

A token is `<user>.<expiry>.<signature>`, the signature an HMAC-SHA256 of the first two
parts under a secret only the platform holds (from the environment; the local stack
generates one per stack). It is checked without any lookup, so the live view can serve a
WebSocket per recording at no cost per message, and it expires within minutes, so a
leaked one is worth little. Tokens never name a recording: a user reaches only the
recordings whose upload key is theirs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from vomage_dagster.domain.keys import valid_user_id

DEFAULT_TTL_S = 15 * 60


class AccessError(ValueError):
    """Refused: the reason is safe to show to the caller (it names no secret)."""


@dataclass(frozen=True)
class Grant:
    user_id: str
    expires_at: int


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(secret: bytes, user_id: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    if not valid_user_id(user_id):
        raise AccessError("not a valid user id")
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = f"{user_id}.{expires}"
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: bytes, token: str | None, now: float | None = None) -> Grant:
    if not token:
        raise AccessError("no token")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise AccessError("malformed token")
    user_id, expires, signature = parts
    if not hmac.compare_digest(signature, _signature(secret, f"{user_id}.{expires}")):
        raise AccessError("bad signature")
    if int(expires) < (time.time() if now is None else now):
        raise AccessError("token expired")
    if not valid_user_id(user_id):
        raise AccessError("not a valid user id")
    return Grant(user_id, int(expires))

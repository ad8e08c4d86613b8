"""Which user an app request speaks for: an access token of the app's Cognito user pool,
checked against the pool's own published keys.

A token is accepted only if it is a JWT signed RS256 by a key of the pool's JWKS, issued
by this pool (`iss`), for this app client (`client_id`), as an access token
(`token_use`), and not expired; its `sub` is the platform's user id (a UUID: it has the
plain shape `keys.valid_user_id` wants for a path segment of upload keys, never changes
and names nobody, unlike a username, which may be an e-mail address).

The check costs no call per request: the keys are fetched once per process and again
only when a token names a key id not seen yet (the pool rotated its keys), at most once
every `REFETCH_AFTER_S`, so tokens with made-up key ids cannot make the live view hammer
the pool. That is what lets one process serve a WebSocket per recording cheaply. A
token that passed is remembered (`VERIFIED_TOKENS` of them, until it expires), so a
page's next calls with it skip the parsing and signature check (≈ 1 ms with PyJWT);
every claim was checked at its first use, and only its expiry can change.

Where the keys are: on AWS `<issuer>/.well-known/jwks.json`, the issuer being
`https://cognito-idp.<region>.amazonaws.com/<pool id>`. The local stack's moto puts that
same issuer in its tokens but serves the keys itself at `<moto>/<pool id>/.well-known/
jwks.json`, so the issuer's host is swapped for the endpoint boto3 would use for
cognito-idp (`AWS_ENDPOINT_URL_COGNITO_IDP`, then `AWS_ENDPOINT_URL`) when one is set.
moto signs every pool's tokens with one key: there a token of another pool is told apart
by its issuer alone, as on AWS it would be by its key too.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from vomage_dagster.domain.keys import valid_user_id

REFETCH_AFTER_S = 60.0  # an unknown key id refetches the keys at most this often
LEEWAY_S = 5  # clock skew between the pool and this process
FETCH_TIMEOUT_S = 5.0
VERIFIED_TOKENS = 10_000


class AuthError(ValueError):
    """Refused (401): the reason is safe to show; it names no key and no secret."""


class KeysUnavailable(RuntimeError):
    """The pool's keys could not be read: the live view's trouble, not the caller's (503)."""


@dataclass(frozen=True)
class Identity:
    user_id: str  # the token's `sub`
    username: str
    expires_at: int


def issuer(region: str, pool_id: str) -> str:
    """The `iss` Cognito (and moto) put in a pool's tokens."""
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


def keys_url(region: str, pool_id: str, environ: dict[str, str] | None = None) -> str:
    """Where the pool's JWKS is read: under the issuer on AWS, under the cognito-idp
    endpoint boto3 is pointed at when there is one (the local stack's moto)."""
    e = os.environ if environ is None else environ
    endpoint = e.get("AWS_ENDPOINT_URL_COGNITO_IDP") or e.get("AWS_ENDPOINT_URL")
    base = f"{endpoint.rstrip('/')}/{pool_id}" if endpoint else issuer(region, pool_id)
    return f"{base}/.well-known/jwks.json"


class Verifier:
    """Checks tokens of one pool and app client; thread-safe, one per process."""

    def __init__(self, region: str, pool_id: str, client_id: str, jwks_url: str | None = None,
                 refetch_after_s: float = REFETCH_AFTER_S):
        if not pool_id or not client_id:
            raise RuntimeError("VOMAGE_USER_POOL_ID and VOMAGE_USER_POOL_CLIENT_ID must be set (locally the "
                               "stack makes the pool at `vomage stack up`: restart a stack older than that)")
        self.issuer = issuer(region, pool_id)
        self.client_id = client_id
        self.jwks_url = jwks_url or keys_url(region, pool_id)
        self.refetch_after_s = refetch_after_s
        self.fetches = 0  # how often the keys were read (tests: the refetch is bounded)
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._verified: dict[str, Identity] = {}  # insertion-ordered: the oldest is forgotten first

    def prefetch(self) -> None:
        """Read the keys now (at start), so the first request does not wait for them."""
        with self._lock:
            self._fetch()

    def _fetch(self) -> None:
        import jwt

        try:
            with urllib.request.urlopen(self.jwks_url, timeout=FETCH_TIMEOUT_S) as resp:
                found = jwt.PyJWKSet.from_dict(json.loads(resp.read()))
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise KeysUnavailable(f"the user pool's keys could not be read ({type(exc).__name__})") from exc
        finally:
            self.fetches += 1
            self._fetched_at = time.monotonic()
        self._keys = {k.key_id: k for k in found.keys if k.key_id}

    def _key(self, kid: object) -> Any:
        if not isinstance(kid, str) or not kid:
            raise AuthError("malformed token")
        key = self._keys.get(kid)
        if key is None:
            with self._lock:  # one refetch for many requests naming the same new key
                key = self._keys.get(kid)
                # No keys yet (the pool was unreachable): try again soon, not in a minute.
                bound = self.refetch_after_s if self._keys else 1.0
                if key is None and time.monotonic() - self._fetched_at >= bound:
                    self._fetch()
                    key = self._keys.get(kid)
        if key is None and not self._keys:
            raise KeysUnavailable("the user pool's keys could not be read")
        if key is None:
            raise AuthError("token signed by an unknown key")
        return key

    def would_fetch(self, token: str | None) -> bool:
        """Whether verifying `token` may read the keys (blocking I/O): its key is not known.
        Otherwise verifying is CPU work of a millisecond at most, done on the event loop
        rather than queued behind every other call's work in the thread pool."""
        if not token or token in self._verified:
            return False
        try:
            segment = token.split(".", 1)[0]
            kid = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))).get("kid")
        except (ValueError, AttributeError, binascii.Error):
            return False  # refused as malformed, without a fetch
        return isinstance(kid, str) and kid not in self._keys

    def verify(self, token: str | None, now: float | None = None) -> Identity:
        """The token's user, or AuthError with the reason; blocking when the keys must be
        (re)read, so call it off the event loop."""
        import jwt

        if not token:
            raise AuthError("no token")
        now = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at + LEEWAY_S < now:
                self._verified.pop(token, None)
                raise AuthError("token expired")
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        if header.get("alg") != "RS256":  # never "none", never an HMAC keyed with a public key
            raise AuthError("malformed token")
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(token, key=key, algorithms=["RS256"],
                                options={"verify_exp": False, "verify_aud": False, "verify_iat": False,
                                         "verify_nbf": False, "require": ["exp", "iss", "sub", "token_use"]})
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        if claims["iss"] != self.issuer:
            raise AuthError("token from another user pool")
        if claims["token_use"] != "access":
            raise AuthError("not an access token")
        if claims.get("client_id") != self.client_id:
            raise AuthError("token for another app client")
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int):
            raise AuthError("malformed token")
        if exp + LEEWAY_S < now:
            raise AuthError("token expired")
        if not valid_user_id(claims["sub"]):
            raise AuthError("not a valid user id")
        who = Identity(claims["sub"], str(claims.get("username", "")), exp)
        self._verified[token] = who
        while len(self._verified) > VERIFIED_TOKENS:
            try:
                self._verified.pop(next(iter(self._verified)))
            except (KeyError, RuntimeError, StopIteration):  # another thread trimmed it meanwhile
                break
        return who

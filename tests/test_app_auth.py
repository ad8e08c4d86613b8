"""The live view's token check (app/auth.py), against keys made here and served over HTTP
as a pool publishes them: a pool's token passes; an expired one, one signed with another
key, another pool's, an ID token, another client's and an unknown key's are refused with
their reason, and an unknown key id refetches the keys at most once per bound."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from vomage_dagster.app.auth import AuthError, KeysUnavailable, Verifier, issuer, keys_url

REGION, POOL, CLIENT = "us-east-1", "us-east-1_TestPool1", "test-client-id"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private: rsa.RSAPrivateKey, kid: str) -> dict:
    found = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {**found, "kid": kid, "alg": "RS256", "use": "sig"}


class Pool:
    """A pool's JWKS endpoint (what Cognito serves under its issuer) on a loopback port."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": _key()}
        self.requests = 0
        pool = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                pool.requests += 1
                body = json.dumps({"keys": [_jwk(k, kid) for kid, k in pool.keys.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{POOL}/.well-known/jwks.json"

    def token(self, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: object) -> str:
        now = int(time.time())
        payload = {"sub": "5f0c7a52-1b7e-4e38-9d0c-8a3e6f1d2b44", "iss": issuer(REGION, POOL),
                   "client_id": CLIENT, "token_use": "access", "username": "alice",
                   "iat": now, "exp": now + 3600, **claims}
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture()
def pool():
    found = Pool()
    yield found
    found.server.shutdown()


@pytest.fixture()
def verifier(pool):
    return Verifier(REGION, POOL, CLIENT, jwks_url=pool.url)


def test_a_token_of_the_pool_for_the_client_names_its_user(pool, verifier):
    who = verifier.verify(pool.token())
    assert who.user_id == "5f0c7a52-1b7e-4e38-9d0c-8a3e6f1d2b44" and who.username == "alice"
    verifier.verify(pool.token())
    assert pool.requests == 1  # the keys are read once per process, not per token


@pytest.mark.parametrize("claims, reason", [
    ({"exp": int(time.time()) - 60}, "token expired"),
    ({"iss": issuer(REGION, "us-east-1_Another9")}, "token from another user pool"),
    ({"iss": issuer("eu-west-1", POOL)}, "token from another user pool"),
    ({"token_use": "id", "aud": CLIENT}, "not an access token"),
    ({"client_id": "another-client"}, "token for another app client"),
    ({"sub": "../alice"}, "not a valid user id"),
])
def test_a_valid_signature_is_not_enough(pool, verifier, claims, reason):
    with pytest.raises(AuthError, match=reason):
        verifier.verify(pool.token(**claims))


def test_a_token_signed_with_another_key_under_the_pools_key_id_is_forged(pool, verifier):
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(pool.token(key=_key()))


@pytest.mark.parametrize("token", [None, "", "abc", "a.b.c", "Bearer x"])
def test_missing_or_malformed_tokens_are_refused(verifier, token):
    with pytest.raises(AuthError, match="no token|malformed"):
        verifier.verify(token)


def test_no_algorithm_but_rs256_is_taken(pool, verifier):
    """Neither an unsigned token nor one HMAC-signed with the pool's public key."""
    claims = {"sub": "u1", "iss": issuer(REGION, POOL), "client_id": CLIENT, "token_use": "access",
              "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="malformed"):
        verifier.verify(unsigned)
    hmac_signed = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="malformed"):
        verifier.verify(hmac_signed)


def test_an_unknown_key_id_refetches_the_keys_at_most_once_per_bound(pool, verifier):
    verifier.verify(pool.token())
    for _ in range(5):
        with pytest.raises(AuthError, match="unknown key"):
            verifier.verify(pool.token(kid="made-up", key=_key()))
    # Read at the first token, then not again within the bound (a minute).
    assert pool.requests == 1 and verifier.fetches == 1


def test_a_rotated_key_is_found_by_refetching(pool):
    verifier = Verifier(REGION, POOL, CLIENT, jwks_url=pool.url, refetch_after_s=0)
    verifier.verify(pool.token())
    pool.keys["k2"] = _key()  # the pool rotates: a new key signs new tokens
    assert verifier.verify(pool.token(kid="k2")).username == "alice"
    assert pool.requests == 2


def test_keys_that_cannot_be_read_are_the_servers_trouble_not_the_callers(pool):
    verifier = Verifier(REGION, POOL, CLIENT, jwks_url="http://127.0.0.1:9/nothing/.well-known/jwks.json")
    with pytest.raises(KeysUnavailable):
        verifier.verify(pool.token())


def test_the_keys_are_under_the_issuer_on_aws_and_under_the_endpoint_locally():
    assert keys_url(REGION, POOL, {}) == f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}/.well-known/jwks.json"
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"}
    assert keys_url(REGION, POOL, local) == f"http://127.0.0.1:5000/{POOL}/.well-known/jwks.json"
    both = {**local, "AWS_ENDPOINT_URL_COGNITO_IDP": "http://127.0.0.1:6000"}
    assert keys_url(REGION, POOL, both) == f"http://127.0.0.1:6000/{POOL}/.well-known/jwks.json"

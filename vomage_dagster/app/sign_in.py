"""Signing in to the app's user pool: a username and password for the pool's tokens.

The page posts them to the live view (`POST /api/sign-in`), which relays them to
Cognito's InitiateAuth (USER_PASSWORD_AUTH) for the public app client, and hands the
tokens back. The live view keeps nothing of it. It relays rather than letting the page
call Cognito itself because the local stack's emulated pool answers no browser's CORS
preflight, and one path for both worlds is the one the tests prove; a phone app may call
Cognito directly (or with SRP), its tokens are the same.

InitiateAuth is one of Cognito's public operations: it is sent unsigned, so the live
view's role needs no grant for it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass
from typing import Any


class SignInError(Exception):
    """The pool refused: an HTTP status and a reason safe to show."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int
    user_id: str  # the access token's `sub`: the platform's user id
    username: str

    def as_dict(self) -> dict:
        return asdict(self)


# Cognito's refusals, as the page shows them. PreventUserExistenceErrors makes an unknown
# user a NotAuthorized too, so nobody learns which usernames exist.
_REFUSALS = {
    "NotAuthorizedException": (401, "wrong username or password"),
    "UserNotFoundException": (401, "wrong username or password"),
    "UserNotConfirmedException": (403, "the account is not confirmed yet"),
    "PasswordResetRequiredException": (403, "the password must be reset first"),
    "TooManyRequestsException": (429, "too many sign-in attempts; wait a moment"),
    "LimitExceededException": (429, "too many sign-in attempts; wait a moment"),
    "InvalidParameterException": (400, "a username and a password are needed"),
}


def _client(region: str) -> Any:
    """cognito-idp, unsigned, for the endpoint boto3 would use now (locally the stack's moto,
    from AWS_ENDPOINT_URL[_COGNITO_IDP]): one client per region and endpoint, so a process
    that moves to another stack does not keep signing in at the old one."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_COGNITO_IDP") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return _client_for(region, endpoint)


@functools.lru_cache(maxsize=8)
def _client_for(region: str, endpoint: str) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.session.Session().client(
        "cognito-idp", region_name=region, endpoint_url=endpoint or None,
        config=Config(signature_version=UNSIGNED, connect_timeout=3, read_timeout=10,
                      retries={"max_attempts": 2, "mode": "standard"}))


def password_sign_in(region: str, client_id: str, username: str, password: str) -> Tokens:
    """The pool's tokens for `username`, or SignInError with a reason to show."""
    from botocore.exceptions import ClientError

    if not username or not password:
        raise SignInError(400, "a username and a password are needed")
    try:
        resp = _client(region).initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                             AuthParameters={"USERNAME": username, "PASSWORD": password})
    except ClientError as exc:
        status, reason = _REFUSALS.get(exc.response["Error"]["Code"], (502, "the sign-in service failed; try again"))
        raise SignInError(status, reason) from None
    if "AuthenticationResult" not in resp:  # a challenge: a new password, a second factor
        raise SignInError(403, f"the pool asks for more ({resp.get('ChallengeName', 'a challenge')})")
    result = resp["AuthenticationResult"]
    claims = _claims(result["AccessToken"])
    return Tokens(result["AccessToken"], result.get("IdToken", ""), result.get("RefreshToken", ""),
                  int(result.get("ExpiresIn", 3600)), claims["sub"], claims.get("username", username))


def _claims(access_token: str) -> dict:
    """The claims of a token the pool has just issued to us (not a check of a caller's
    token: that is `auth.Verifier`)."""
    import jwt

    return jwt.decode(access_token, options={"verify_signature": False})

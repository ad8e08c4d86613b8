"""A user of the app's pool on the local stack, signed in as the app signs in.

`sign_in_as` makes the user in the stack's pool if need be, or gives them a new
password, as an operator would (AdminCreateUser, then AdminSetUserPassword permanent,
with the stack's root keys), then signs in through InitiateAuth for the public client
exactly as the page does (`app/sign_in.py`). The tokens are the pool's own JWTs, so
whatever takes them (the live view, the tests, the browser benchmark, `vomage app
token`) goes through the same check as a real user's.
"""

from __future__ import annotations

import secrets
from typing import Any

from vomage_dagster.app.sign_in import Tokens, password_sign_in
from vomage_dagster.settings import Settings


def _admin(settings: Settings) -> Any:
    """cognito-idp as the stack's root (an operator), on the stack's moto."""
    import boto3

    from vomage_dagster.local.aws import stack

    info = stack.read_info(settings)
    if info is None:
        raise RuntimeError("the local stack is not running: start it with `vomage stack up`")
    return boto3.client("cognito-idp", region_name=settings.region,
                        endpoint_url=f"http://127.0.0.1:{info['ports']['moto']}",
                        aws_access_key_id=stack.DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=stack.DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def new_password() -> str:
    """A password the template's policy takes (length, lower case, a digit), and Cognito's
    default policy too (upper case, a symbol)."""
    return f"{secrets.token_urlsafe(15)}aZ7!"


def set_user(settings: Settings, username: str, password: str) -> None:
    """Make `username` in the stack's pool with `password` (confirmed), or give them it."""
    if not settings.user_pool_id:
        raise RuntimeError("VOMAGE_USER_POOL_ID is not set: is the local stack's environment loaded?")
    idp = _admin(settings)
    try:
        idp.admin_create_user(UserPoolId=settings.user_pool_id, Username=username, MessageAction="SUPPRESS")
    except idp.exceptions.UsernameExistsException:
        pass
    idp.admin_set_user_password(UserPoolId=settings.user_pool_id, Username=username, Password=password,
                                Permanent=True)


def sign_in_as(settings: Settings, username: str, password: str | None = None) -> Tokens:
    """`username`'s tokens from the stack's pool; the user is made (or their password set) first."""
    password = password or new_password()
    set_user(settings, username, password)
    return password_sign_in(settings.region, settings.user_pool_client_id, username, password)


def delete_user(settings: Settings, username: str) -> None:
    """Remove `username` from the stack's pool (an operator's AdminDeleteUser)."""
    _admin(settings).admin_delete_user(UserPoolId=settings.user_pool_id, Username=username)

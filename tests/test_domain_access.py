"""The app's signed tokens: a user's, for minutes, unforgeable without the secret."""

import pytest

from vomage_dagster.domain.access import AccessError, issue, verify

SECRET = b"s" * 32


def test_a_token_names_its_user_until_it_expires():
    token = issue(SECRET, "alice", ttl_s=60, now=1_000)
    assert verify(SECRET, token, now=1_030).user_id == "alice"
    with pytest.raises(AccessError, match="expired"):
        verify(SECRET, token, now=1_061)


@pytest.mark.parametrize("token", [None, "", "alice", "alice.x.sig", "alice.99999999999.sig", "a.b.c.d"])
def test_missing_malformed_or_forged_tokens_are_refused(token):
    with pytest.raises(AccessError):
        verify(SECRET, token, now=1_000)


def test_another_users_name_cannot_be_put_in_a_token():
    user, expires, signature = issue(SECRET, "alice", now=1_000).split(".")
    with pytest.raises(AccessError, match="signature"):
        verify(SECRET, f"bob.{expires}.{signature}", now=1_000)
    with pytest.raises(AccessError, match="signature"):
        verify(b"another secret", issue(SECRET, "alice", now=1_000), now=1_000)


@pytest.mark.parametrize("user", ["", "a.b", "../x", "a" * 65, "ü"])
def test_only_plain_user_ids_get_tokens(user):
    with pytest.raises(AccessError):
        issue(SECRET, user)

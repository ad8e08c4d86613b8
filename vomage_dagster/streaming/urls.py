"""The presigned streaming URL the platform hands the app (`vomage stream-url`, the live view).

The URL is signed with credentials of the streaming role (`VOMAGE_STREAMING_ROLE_ARN`,
the template's `AppStreamingRole`), which may do `transcribe:StartStreamTranscriptionWebSocket`
and nothing else, assumed for the shortest session STS grants (15 min); the URL itself is
valid for 5 minutes. The user id names the session for CloudTrail as a hash, never in
clear. A user's session is reused while it outlives a URL signed now by a minute (about
nine minutes of its fifteen), so the live view calls STS once per user per session, not
once per recording. The URL names the language's custom vocabulary (or every option's, when
Transcribe identifies the language) and asks for stabilised partial results (settings.py).
Locally the endpoint is the model server's (`VOMAGE_TRANSCRIBE_STREAMING_URL`) and
the stack sets the role, which its IAM checks as AWS would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections import OrderedDict

from botocore.credentials import Credentials

from vomage_dagster.settings import LANGUAGE_OPTIONS, Settings
from vomage_dagster.streaming import presign

ROLE_ENV = "VOMAGE_STREAMING_ROLE_ARN"
ENDPOINT_ENV = "VOMAGE_TRANSCRIBE_STREAMING_URL"
SESSION_S = 900  # the shortest session STS grants
# A session is reused only while it outlives a URL signed now (its 5 minutes) by a minute.
KEEP_MARGIN = dt.timedelta(seconds=presign.MAX_EXPIRES_S + 60)
MAX_SESSIONS = 10_000  # users with a live session in this process, the oldest dropped first

_sessions: OrderedDict[tuple[str, str, str], tuple[Credentials, dt.datetime]] = OrderedDict()
_lock = threading.Lock()


def _assumed(settings: Settings, role: str, session_name: str, now: dt.datetime | None = None) -> Credentials:
    """The streaming role's session for this user: the kept one while it lasts, else a new one."""
    from vomage_dagster.resources.aws import client

    now = now or dt.datetime.now(dt.UTC)
    key = (os.environ.get("AWS_ENDPOINT_URL", ""), role, session_name)  # another stack, another session
    with _lock:
        kept = _sessions.get(key)
        if kept is not None and kept[1] - now > KEEP_MARGIN:
            _sessions.move_to_end(key)
            return kept[0]
    found = client("sts", settings.region).assume_role(RoleArn=role, RoleSessionName=session_name,
                                                      DurationSeconds=SESSION_S)["Credentials"]
    made = Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
    expiration = found["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=dt.UTC)
    with _lock:
        _sessions[key] = (made, expiration)
        _sessions.move_to_end(key)
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
    return made


def _credentials(settings: Settings, user_id: str, now: dt.datetime | None = None) -> Credentials:
    from vomage_dagster.resources.aws import _session

    role = os.environ.get(ROLE_ENV, "")
    if role:
        return _assumed(settings, role, "stream-" + hashlib.sha256(user_id.encode()).hexdigest()[:16], now)
    if not settings.is_local:
        raise RuntimeError(f"{ROLE_ENV} is not set: the app's streaming URLs are signed by that role only")
    frozen = _session().get_credentials().get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def endpoint(settings: Settings) -> str:
    if settings.is_local:
        found = os.environ.get(ENDPOINT_ENV, "")
        if not found:
            raise RuntimeError(f"{ENDPOINT_ENV} is not set: start the stack (`vomage stack up`)")
        return found
    return presign.aws_endpoint(settings.region)


def stream_url(settings: Settings, user_id: str, language: str | None = None,
               expires_s: int = presign.MAX_EXPIRES_S) -> str:
    """A URL to stream one recording's audio to, valid for `expires_s` (≤ 300 s)."""
    if language is not None and language not in LANGUAGE_OPTIONS:
        raise ValueError(f"language must be one of {', '.join(LANGUAGE_OPTIONS)}")
    params = presign.stream_params(language, LANGUAGE_OPTIONS, vocabularies=settings.vocabulary_names,
                                   stability=settings.partial_results_stability)
    return presign.presign(endpoint(settings), params, _credentials(settings, user_id),
                           settings.region, expires_s)

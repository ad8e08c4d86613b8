"""The presigned streaming URL the platform hands the app (`vomage stream-url`, the live view).

The URL is signed with credentials of the streaming role (`VOMAGE_STREAMING_ROLE_ARN`,
the template's `AppStreamingRole`), which may do `transcribe:StartStreamTranscriptionWebSocket`
and nothing else, assumed for the shortest session STS grants (15 min); the URL itself is
valid for 5 minutes. The user id names the session for CloudTrail as a hash, never in
clear. Locally the endpoint is the model server's (`VOMAGE_TRANSCRIBE_STREAMING_URL`) and
the stack sets the role, which its IAM checks as AWS would.
"""

from __future__ import annotations

import hashlib
import os

from botocore.credentials import Credentials

from vomage_dagster.settings import LANGUAGE_OPTIONS, Settings
from vomage_dagster.streaming import presign

ROLE_ENV = "VOMAGE_STREAMING_ROLE_ARN"
ENDPOINT_ENV = "VOMAGE_TRANSCRIBE_STREAMING_URL"


def _credentials(settings: Settings, user_id: str) -> Credentials:
    from vomage_dagster.resources.aws import _session, client

    role = os.environ.get(ROLE_ENV, "")
    if role:
        session_name = "stream-" + hashlib.sha256(user_id.encode()).hexdigest()[:16]
        found = client("sts", settings.region).assume_role(RoleArn=role, RoleSessionName=session_name,
                                                          DurationSeconds=900)["Credentials"]
        return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
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
    params = presign.stream_params(language, LANGUAGE_OPTIONS)
    return presign.presign(endpoint(settings), params, _credentials(settings, user_id),
                           settings.region, expires_s)

"""Where things live in S3, and how a recording id is read from an upload key."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote_plus

UPLOADS_PREFIX = "uploads/"
PROCESSED_PREFIX = "processed/"
# Why the ingest refused a message or an upload: `<prefix><md5 of the message>.json`.
INGEST_ERRORS_PREFIX = "ingest-errors/"
# A recording id becomes a Dagster partition key and a DynamoDB key: keep it plain.
_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_UPLOAD_KEY = re.compile(rf"uploads/(?P<user>{_ID})/(?P<rid>{_ID})(?:\.(?P<ext>[A-Za-z0-9]{{1,8}}))?")
# Use with fullmatch: `$` would also accept a trailing newline.
RECORDING_ID = re.compile(_ID)


@dataclass(frozen=True)
class UploadKey:
    key: str
    user_id: str
    recording_id: str
    extension: str


def parse_upload_key(key: str) -> UploadKey | None:
    """`uploads/<user>/<recording_id>.<ext>` → its parts; None for anything else.

    Keys from S3 event notifications arrive URL-encoded; pass them through
    `decode_event_key` first.
    """
    m = _UPLOAD_KEY.fullmatch(key) if isinstance(key, str) else None
    if not m:
        return None
    return UploadKey(key, m["user"], m["rid"], (m["ext"] or "").lower())


def decode_event_key(key: str) -> str:
    """S3 event notifications URL-encode keys (spaces as '+')."""
    return unquote_plus(key)


def upload_key(user_id: str, recording_id: str, extension: str) -> str:
    return f"{UPLOADS_PREFIX}{user_id}/{recording_id}.{extension.lstrip('.').lower()}"


def processed_key(recording_id: str, name: str) -> str:
    return f"{PROCESSED_PREFIX}{recording_id}/{name}"


def valid_user_id(user_id: object) -> bool:
    """A user id has the recording id's plain shape: it is a path segment of upload keys."""
    return isinstance(user_id, str) and RECORDING_ID.fullmatch(user_id) is not None


def new_recording_id() -> str:
    """A new recording's id, as the app gives it: when, and enough randomness to be unique."""
    return f"rec-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"

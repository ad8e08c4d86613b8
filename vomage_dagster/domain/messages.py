"""What arrives on the uploads queue, parsed and checked: no AWS, no Dagster.

Three shapes carry an upload:
- an S3 event notification (`Records[].s3`), keys URL-encoded; `s3:TestEvent` is ignored;
- an EventBridge "Object Created" event from S3 (`detail.bucket.name`, `detail.object.key`);
- the app's own message `{recording_id, s3_key, user_id, metadata}`.
Anything else is a poison message: it names why, and never reaches a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .keys import RECORDING_ID, UploadKey, decode_event_key, parse_upload_key


class PoisonMessage(ValueError):
    """A message that can never be processed; the reason is kept for the operator."""


@dataclass(frozen=True)
class Arrival:
    """One upload announced by a message."""

    upload: UploadKey
    source: str  # "s3-event", "eventbridge" or "app"
    attempt: int = 1
    metadata: dict = field(default_factory=dict)

    @property
    def recording_id(self) -> str:
        return self.upload.recording_id


def _upload(bucket: str | None, key: str | None, expected_bucket: str) -> UploadKey:
    if bucket != expected_bucket:
        raise PoisonMessage(f"unknown bucket {bucket!r}")
    if not isinstance(key, str) or not key:
        raise PoisonMessage("no object key")
    parsed = parse_upload_key(key)
    if parsed is None:
        raise PoisonMessage(f"key {key[:200]!r} is not uploads/<user>/<recording_id>.<ext>")
    return parsed


def _app_message(body: dict, bucket: str) -> Arrival:
    missing = [k for k in ("recording_id", "s3_key", "user_id") if not isinstance(body.get(k), str)]
    if missing:
        raise PoisonMessage(f"app message lacks string field(s) {', '.join(missing)}")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise PoisonMessage("metadata must be an object")
    if not RECORDING_ID.match(body["recording_id"]):
        raise PoisonMessage("recording_id has characters outside [A-Za-z0-9_-]")
    upload = _upload(body.get("bucket", bucket), body["s3_key"], bucket)
    if upload.recording_id != body["recording_id"] or upload.user_id != body["user_id"]:
        raise PoisonMessage("recording_id/user_id do not match s3_key")
    attempt = body.get("attempt", 1)
    if not isinstance(attempt, int) or attempt < 1:
        raise PoisonMessage("attempt must be a positive integer")
    return Arrival(upload, "app", attempt, metadata)


def parse_message(raw: str, bucket: str) -> list[Arrival]:
    """The uploads a queue message announces; [] for messages to drop (S3 test events).

    Raises PoisonMessage for anything that cannot be processed.
    """
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise PoisonMessage(f"body is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise PoisonMessage("body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return []
    if "Records" in body:
        records = body["Records"]
        if not isinstance(records, list) or not records:
            raise PoisonMessage("Records is empty")
        arrivals = []
        for rec in records:
            s3 = rec.get("s3") if isinstance(rec, dict) else None
            if not isinstance(s3, dict) or not str(rec.get("eventName", "")).startswith("ObjectCreated"):
                raise PoisonMessage(f"not an ObjectCreated record: {str(rec)[:200]}")
            key = s3.get("object", {}).get("key")
            upload = _upload(s3.get("bucket", {}).get("name"),
                             decode_event_key(key) if isinstance(key, str) else None, bucket)
            arrivals.append(Arrival(upload, "s3-event"))
        return arrivals
    if body.get("detail-type") == "Object Created" and body.get("source") == "aws.s3":
        detail = body.get("detail") or {}
        key = (detail.get("object") or {}).get("key")
        upload = _upload((detail.get("bucket") or {}).get("name"),
                         decode_event_key(key) if isinstance(key, str) else None, bucket)
        return [Arrival(upload, "eventbridge")]
    return [_app_message(body, bucket)]

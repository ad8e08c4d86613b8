"""What arrives on the uploads queue, parsed and checked: no AWS, no Dagster.

Three shapes carry an upload:
- an S3 event notification (`Records[].s3`), keys URL-encoded; `s3:TestEvent` is ignored;
- an EventBridge "Object Created" event from S3 (`detail.bucket.name`, `detail.object.key`);
- the app's own message `{recording_id, s3_key, user_id, metadata}`: a retry, or the
  app's notice that an upload is complete (`upload_notice`), which need not wait for S3's
  notification of the same object (that one, coming later, finds the recording taken).
Anything else is a poison message: it names why, and never reaches a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vomage_dagster.domain.keys import RECORDING_ID, UploadKey, decode_event_key, parse_upload_key


class PoisonMessage(ValueError):
    """A message that can never be processed; the reason is kept for the operator."""


@dataclass(frozen=True)
class Arrival:
    """One upload announced by a message."""

    upload: UploadKey
    source: str  # "s3-event", "eventbridge" or "app"
    attempt: int = 1

    @property
    def recording_id(self) -> str:
        return self.upload.recording_id


# What one message may carry before it is refused unread: SQS bodies are at most 256 KiB,
# and no notification the platform expects holds more than one record.
MAX_BODY_CHARS = 262_144
MAX_RECORDS = 10
MAX_ATTEMPT = 10_000


def _get(value: object, *path: str) -> object:
    """`value[path[0]][path[1]]…`, or None where a step is missing or is not an object."""
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _upload(bucket: object, key: object, expected_bucket: str) -> UploadKey:
    if bucket != expected_bucket:
        raise PoisonMessage(f"unknown bucket {str(bucket)[:100]!r}")
    if not isinstance(key, str) or not key:
        raise PoisonMessage("no object key")
    parsed = parse_upload_key(key)
    if parsed is None:
        raise PoisonMessage(f"key {key[:200]!r} is not uploads/<user>/<recording_id>.<ext>")
    return parsed


def _event_key(key: object) -> object:
    return decode_event_key(key) if isinstance(key, str) else None


def _app_message(body: dict, bucket: str) -> Arrival:
    missing = [k for k in ("recording_id", "s3_key", "user_id") if not isinstance(body.get(k), str)]
    if missing:
        raise PoisonMessage(f"app message lacks string field(s) {', '.join(missing)}")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise PoisonMessage("metadata must be an object")
    if not RECORDING_ID.fullmatch(body["recording_id"]):
        raise PoisonMessage("recording_id has characters outside [A-Za-z0-9_-]")
    upload = _upload(body.get("bucket", bucket), body["s3_key"], bucket)
    if upload.recording_id != body["recording_id"] or upload.user_id != body["user_id"]:
        raise PoisonMessage("recording_id/user_id do not match s3_key")
    attempt = body.get("attempt", 1)
    if type(attempt) is not int or not 1 <= attempt <= MAX_ATTEMPT:  # bool is an int subclass: refused too
        raise PoisonMessage("attempt must be a positive integer")
    # The client's own metadata travels on the S3 object; nothing of a message's is kept.
    return Arrival(upload, "app", attempt)


def upload_notice(upload: UploadKey, bucket: str) -> dict:
    """The app's message that `upload` is stored: the first attempt of its recording."""
    return {"recording_id": upload.recording_id, "s3_key": upload.key, "user_id": upload.user_id,
            "bucket": bucket, "attempt": 1, "metadata": {}, "notice": "uploaded"}


def _parse(body: dict, bucket: str) -> list[Arrival]:
    if body.get("Event") == "s3:TestEvent" and "Records" not in body:
        return []
    if "Records" in body:
        records = body["Records"]
        if not isinstance(records, list) or not records:
            raise PoisonMessage("Records is empty")
        if len(records) > MAX_RECORDS:
            raise PoisonMessage(f"{len(records)} records in one message, more than {MAX_RECORDS}")
        arrivals = []
        for rec in records:
            s3 = _get(rec, "s3")
            event = _get(rec, "eventName")
            if not isinstance(s3, dict) or not isinstance(event, str) or not event.startswith("ObjectCreated"):
                raise PoisonMessage(f"not an ObjectCreated record: {str(rec)[:200]}")
            upload = _upload(_get(s3, "bucket", "name"), _event_key(_get(s3, "object", "key")), bucket)
            arrivals.append(Arrival(upload, "s3-event"))
        return arrivals
    if body.get("detail-type") == "Object Created" and body.get("source") == "aws.s3":
        detail = body.get("detail")
        upload = _upload(_get(detail, "bucket", "name"), _event_key(_get(detail, "object", "key")), bucket)
        return [Arrival(upload, "eventbridge")]
    return [_app_message(body, bucket)]


def parse_message(raw: object, bucket: str) -> list[Arrival]:
    """The uploads a queue message announces; [] for messages to drop (S3 test events).

    Total: whatever the body holds, the answer is arrivals, [] or PoisonMessage with the
    reason — never another exception, so one message cannot break a sensor tick.
    """
    if not isinstance(raw, str):
        raise PoisonMessage("body is not text")
    if len(raw) > MAX_BODY_CHARS:
        raise PoisonMessage(f"body of {len(raw)} characters, more than {MAX_BODY_CHARS}")
    try:
        body = json.loads(raw)
    except RecursionError as exc:
        raise PoisonMessage("body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise PoisonMessage(f"body is not JSON ({str(exc)[:200]})") from exc
    if not isinstance(body, dict):
        raise PoisonMessage("body is not a JSON object")
    try:
        return _parse(body, bucket)
    except PoisonMessage:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
        # A shape no check above foresaw: refused with its reason, never a crash.
        raise PoisonMessage(f"unreadable message ({type(exc).__name__})") from exc

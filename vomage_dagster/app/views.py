"""What the app shows of one recording, read from what the pipeline writes, and who may see it.

Plain functions over the platform's resources (no web framework here), so the server's
routes stay thin and these are tested on the local stack directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain import streamed, styles
from vomage_dagster.domain.audio import MAX_BYTES
from vomage_dagster.domain.keys import (
    RECORDING_ID,
    UPLOADS_PREFIX,
    UploadKey,
    parse_upload_key,
    processed_key,
    upload_key,
)
from vomage_dagster.domain.messages import upload_notice
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.telemetry import tracing

# What a phone or a browser sends → the key's extension. MediaRecorder says
# "audio/webm;codecs=opus": the parameters are dropped before the lookup.
UPLOAD_TYPES = {
    "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a", "audio/x-m4a": "m4a",
    "audio/m4a": "m4a", "audio/aac": "aac", "audio/mpeg": "mp3", "audio/wav": "wav",
    "audio/x-wav": "wav", "audio/wave": "wav", "audio/3gpp": "3gp", "audio/flac": "flac",
    "audio/x-flac": "flac", "audio/amr": "amr",
}
IMAGE_LINK_S = 15 * 60
_RANK_ANALYZING = life.RANK[life.ANALYZING]
_RANK_GENERATING = life.RANK[life.GENERATING]


class Refused(Exception):
    """An API answer other than success: HTTP status and a reason safe to show."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def content_type_extension(content_type: object) -> tuple[str, str]:
    """The upload's plain content type and its key extension; 415 for anything not audio we take."""
    base = content_type.split(";", 1)[0].strip().lower() if isinstance(content_type, str) else ""
    if base not in UPLOAD_TYPES:
        raise Refused(415, f"not an audio type the app takes ({', '.join(sorted(set(UPLOAD_TYPES)))})")
    return base, UPLOAD_TYPES[base]


def chosen_style(given: object) -> str | None:
    """The image style the user chose (None: the mood chooses); 400 naming the five otherwise."""
    if given is not None and not isinstance(given, str):
        raise Refused(400, f"style must be one of {', '.join(styles.STYLES)}")
    try:
        return styles.parse_style(given)
    except styles.UnknownStyle as exc:
        raise Refused(400, str(exc)) from None


def check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise Refused(400, "size must be the file's size in bytes")
    if size > MAX_BYTES:
        raise Refused(413, f"the file is {size} bytes, over the {MAX_BYTES} a recording may have")
    return size


@dataclass(frozen=True)
class UploadForm:
    recording_id: str
    url: str
    fields: dict[str, str]


def presigned_upload(store: ObjectStore, user_id: str, recording_id: str, content_type: str,
                     extension: str, metadata: dict[str, str], expires_s: int = 300) -> UploadForm:
    """A presigned POST for exactly this key, type, user metadata and size range.

    The key carries the user (the record's user is the key's, issue 15), so a token's
    holder can only ever post into their own feed.
    """
    key = upload_key(user_id, recording_id, extension)
    fields = {"Content-Type": content_type, "x-amz-meta-user-id": user_id,
              **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
    conditions: list[Any] = [{k: v} for k, v in fields.items()]
    conditions.append(["content-length-range", 1, MAX_BYTES])
    post = store.s3.generate_presigned_post(store.bucket, key, Fields=fields, Conditions=conditions,
                                            ExpiresIn=expires_s)
    return UploadForm(recording_id, post["url"], post["fields"])


def presigned_sidecar(store: ObjectStore, user_id: str, recording_id: str, expires_s: int = 300) -> UploadForm:
    """A presigned POST for the recording's streamed transcript (`domain/streamed.py`)."""
    key = streamed.sidecar_key(user_id, recording_id)
    fields = {"Content-Type": "application/json"}
    conditions: list[Any] = [{"Content-Type": "application/json"}, ["content-length-range", 1, streamed.MAX_BYTES]]
    post = store.s3.generate_presigned_post(store.bucket, key, Fields=fields, Conditions=conditions,
                                            ExpiresIn=expires_s)
    return UploadForm(recording_id, post["url"], post["fields"])


def users_upload(store: ObjectStore, user_id: str, recording_id: str) -> UploadKey | None:
    """The user's own upload of `recording_id` (under their key), if it is stored."""
    found = next(iter(store.list(f"{UPLOADS_PREFIX}{user_id}/{recording_id}.")), None)
    return parse_upload_key(found.key) if found is not None else None


def fresh_recording_id(store: ObjectStore, user_id: str, recording_id: object) -> str:
    """A recording id the page was given for a stream, not used by an upload yet (400/409)."""
    if not isinstance(recording_id, str) or not RECORDING_ID.fullmatch(recording_id):
        raise Refused(400, "recording_id is not a recording id")
    if users_upload(store, user_id, recording_id) is not None:
        raise Refused(409, "that recording is uploaded already")
    return recording_id


def announce_upload(store: ObjectStore, queue: UploadQueue, user_id: str, recording_id: str) -> dict:
    """Tell the ingest that this user's upload of `recording_id` is stored, so its run need
    not wait for S3's notification (which still comes, and finds the recording taken).

    Only the user's own upload under their own key: 404 when there is none (a notice for
    an upload that does not exist, or is another user's, sends nothing). Sent again, it
    is one more message for a recording already registered: the ingest launches nothing
    twice."""
    upload = users_upload(store, user_id, recording_id)
    if upload is None:
        raise Refused(404, "no upload of yours has this recording id")
    with tracing.recording_span("app: upload notice", recording_id) as span:
        queue.send(upload_notice(upload, store.bucket), attributes=tracing.carrier_of(span))
    return {"recording_id": recording_id, "noticed": True}


def owned_status(status: StatusTable, store: ObjectStore, user_id: str, recording_id: str) -> dict | None:
    """The recording's status if it is this user's; None if it has none yet but their upload
    exists (the ingest registers it within a moment). 404 if neither, 403 if another's."""
    return owned(status.get(recording_id), store, user_id, recording_id)


def owned(item: dict | None, store: ObjectStore, user_id: str, recording_id: str) -> dict | None:
    """`owned_status` of an item read already (`item`: the recording's, or None)."""
    if item is not None:
        parsed = parse_upload_key(item.get("upload_key", ""))
        if parsed is None or parsed.user_id != user_id:
            raise Refused(403, "this recording is not yours")
        return item
    if users_upload(store, user_id, recording_id) is None:
        raise Refused(404, "unknown recording")
    return None


def image_url(store: ObjectStore, recording_id: str, images_base_url: str = "", name: str = "image.png") -> str:
    """The image's (or its thumbnail's) link. Behind the images CDN (`VOMAGE_IMAGES_BASE_URL`,
    CloudFront with origin access to `processed/`) it is stable, so a browser caches it
    across status reads; without one (the local stack), a presigned GET, new on every read."""
    key = processed_key(recording_id, name)
    if images_base_url:
        return f"{images_base_url.rstrip('/')}/{key}"
    return store.s3.generate_presigned_url("get_object", Params={"Bucket": store.bucket, "Key": key},
                                           ExpiresIn=IMAGE_LINK_S)


def waiting_view(recording_id: str) -> dict:
    """An upload the ingest has not registered yet."""
    return {"recording_id": recording_id, "stage": life.UPLOADED, "progress": 0, "eta_seconds": None,
            "error": None}


def stored_outputs(store: ObjectStore, item: dict) -> dict:
    """The transcript and mood from S3, read only for an item written before the status
    carried them itself (the stage outputs stand in); empty for every newer item."""
    rid = item["recording_id"]
    rank = int(item.get("stage_rank", 0))
    complete = item.get("stage") == life.COMPLETE
    found: dict = {}
    if not item.get("transcript") and (rank >= _RANK_ANALYZING or complete):
        found["transcript"] = store.get_json_or_none(processed_key(rid, "transcript.json"))
    if not item.get("mood") and (rank >= _RANK_GENERATING or complete):
        found["mood"] = store.get_json_or_none(processed_key(rid, "mood.json"))
    return found


def view_of(item: dict, stored: dict | None = None, image_link: str | None = None) -> dict:
    """Everything the page shows of a status item: stage, progress, ETA, the words and the
    mood once they exist, the image once complete (`image_link`), or the error with its
    retryable flag. Pure, so one change is turned into one view for all its followers;
    `stored`: `stored_outputs` of an item older than its words and mood on the status."""
    stored = stored or {}
    view = {k: item.get(k) for k in ("recording_id", "stage", "progress", "eta_seconds", "error", "attempt",
                                     "message", "language")}
    if item.get("retry_at") and item.get("stage") == life.UPLOADED:  # an automatic retry is coming
        view["retry_at"] = item["retry_at"]
    if item.get("transcript"):
        view["transcript"] = {k: item["transcript"].get(k) for k in ("text", "language", "source")}
    elif stored.get("transcript"):
        view["transcript"] = {"text": stored["transcript"].get("text", ""),
                              "language": stored["transcript"].get("language")}
    if item.get("mood"):
        view["mood"] = item["mood"]
    elif stored.get("mood"):
        view["mood"] = {k: stored["mood"].get(k) for k in ("primary_emotion", "intensity", "valence", "arousal",
                                                           "keywords", "summary")}
    if item.get("context"):
        view["context"] = item["context"]
    if item.get("style"):
        view["style"] = item["style"]
    if item.get("stage") == life.COMPLETE and image_link:
        view["image_url"] = image_link
    return view


def render(store: ObjectStore, item: dict, images_base_url: str = "") -> dict:
    """`view_of` an item with what it needs from S3: the image's link once complete, and
    the stage outputs of an item older than them."""
    link = image_url(store, item["recording_id"], images_base_url) if item.get("stage") == life.COMPLETE else None
    return view_of(item, stored_outputs(store, item), link)


def snapshot(status: StatusTable, store: ObjectStore, user_id: str, recording_id: str,
             images_base_url: str = "") -> dict:
    """The recording's view now, read from the status table, if it is this user's."""
    item = owned_status(status, store, user_id, recording_id)
    return waiting_view(recording_id) if item is None else render(store, item, images_base_url)


def is_final(view: dict) -> bool:
    return view.get("stage") in life.FINAL

"""Uploads as the app makes them: the key, the content type and the client metadata."""

from __future__ import annotations

from pathlib import Path

from vomage_dagster.domain.keys import new_recording_id, upload_key
from vomage_dagster.resources.build import build_resources
from vomage_dagster.settings import Settings

# What the app sends for each extension (the live view's own table is app/views.py).
CONTENT_TYPES = {
    "m4a": "audio/mp4", "webm": "audio/webm", "ogg": "audio/ogg", "mp3": "audio/mpeg",
    "wav": "audio/wav", "3gp": "audio/3gpp", "aac": "audio/aac", "opus": "audio/ogg",
    "mp4": "audio/mp4", "flac": "audio/flac", "amr": "audio/amr",
}


def upload_file(settings: Settings, path: Path, user_id: str, *, lat: str | None = None,
                lon: str | None = None, tz: str | None = None, lang: str | None = None,
                recording_id: str | None = None, streamed: bool = False, style: str | None = None) -> str:
    """Store a recording as the app does: key, content type and client metadata
    (`streamed`: the app streamed it and promises the transcript as a sidecar; `style`:
    the image style the user chose)."""
    rid = recording_id or new_recording_id()
    ext = path.suffix.lstrip(".").lower() or "bin"
    key = upload_key(user_id, rid, ext)
    meta = {"user-id": user_id, **({"transcript": "streaming"} if streamed else {})}
    for name, value in (("lat", lat), ("lon", lon), ("tz", tz), ("lang", lang), ("style", style)):
        if value:
            meta[name] = str(value)
    store = build_resources(settings)["store"]
    store.put_bytes(key, path.read_bytes(), CONTENT_TYPES.get(ext, "application/octet-stream"),
                    meta)
    return rid

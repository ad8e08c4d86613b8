"""A user's own recordings, newest first: the live view's feed (`GET /api/recordings`).

One query of the status table's index on user and registration time
(`lifecycle.USER_INDEX`), read backwards, a page at a time: every recording the ingest
registered for the user, whatever its stage, is there, the failed ones with their error.
The user is the token's, so nobody can list anyone else's. Only what the feed shows is
sent: stage, progress, the mood's headline, the error, and for a complete recording a
link to its thumbnail (the full image stays behind `GET /api/recordings/<id>`).
"""

from __future__ import annotations

from vomage_dagster.app.views import Refused, image_url
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore

PAGE_SIZE = 20
MAX_PAGE_SIZE = 50


def page_size(raw: str | None) -> int:
    """`?limit=`: 1–50, default 20 (400 for anything else)."""
    if raw in (None, ""):
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise Refused(400, f"limit must be a number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def entry(item: dict, store: ObjectStore, images_base_url: str = "") -> dict:
    """One recording as the feed shows it."""
    rid = item["recording_id"]
    out = {"recording_id": rid, "stage": item.get("stage"), "progress": item.get("progress", 0),
           "created_at": item.get("created_at")}
    mood = item.get("mood") or {}
    if mood:
        out["mood"] = {k: mood.get(k) for k in ("primary_emotion", "summary", "valence") if k in mood}
    if item.get("error"):
        out["error"] = item["error"]
    if item.get("stage") == life.COMPLETE:
        out["thumbnail_url"] = image_url(store, rid, images_base_url, "thumbnail.png")
    return out


def feed(status: StatusTable, store: ObjectStore, user_id: str, images_base_url: str = "",
         limit: int = PAGE_SIZE) -> dict:
    """The user's most recent recordings, newest first."""
    return {"recordings": [entry(i, store, images_base_url) for i in status.for_user(user_id, limit)]}

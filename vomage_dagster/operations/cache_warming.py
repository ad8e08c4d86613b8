"""Rebuild the hot Redis keys from what S3 and DynamoDB hold, after a cache loss.

For each recent record: `transcribe:<audio sha256>` from its transcript output,
`analysis:<content hash>` from its mood output, `image:<prompt hash>` from its image
output, and `context:<place>:<time bucket>` for weather still inside its 30 minutes.
Safe at any time: it only writes values the pipeline itself would write.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from vomage_dagster.domain import prompts
from vomage_dagster.domain.context import weather_from_dict
from vomage_dagster.domain.keys import processed_key
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.context_cache import context_key
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.store import ObjectStore


def _output(store: ObjectStore, rid: str, name: str) -> dict | None:
    key = processed_key(rid, f"{name}.json")
    return store.get_json(key) if store.exists(key) else None


def recent_days(days_back: int, now: dt.datetime | None = None) -> list[str]:
    """Today and `days_back` days before, as UTC dates."""
    today = (now or dt.datetime.now(dt.UTC)).date()
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(days_back + 1)]


def warm(records: RecordsTable, store: ObjectStore, cache: Cache, days: list[str],
         now: dt.datetime | None = None) -> Counter:
    """Warm the cache from the records of `days`; counts of keys written per kind."""
    now = now or dt.datetime.now(dt.UTC)
    warmed: Counter = Counter()
    for day in days:
        for record in records.for_day(day):
            rid = record["recording_id"]
            warmed["records"] += 1
            transcript = _output(store, rid, "transcript")
            if transcript and cache.set_json("transcribe", record["audio_sha256"], {
                    k: transcript[k] for k in ("text", "language", "confidence", "segments")}):
                warmed["transcribe"] += 1
            mood = _output(store, rid, "mood")
            if mood and transcript:
                key = prompts.analysis_cache_key(transcript["text"], transcript["language"],
                                                 mood["model_id"])
                value = {k: mood[k] for k in ("primary_emotion", "confidence", "intensity", "valence",
                                              "arousal", "keywords", "summary", "secondary_emotions")}
                value["usage"] = mood.get("usage") or mood.get("saved_usage") or {}
                if cache.set_json("analysis", key, value):
                    warmed["analysis"] += 1
            image = _output(store, rid, "mood_image")
            if image and store.exists(image["image_key"]) and cache.set_json("image", image["prompt_hash"], {
                    "image_key": image["image_key"], "thumbnail_key": image["thumbnail_key"],
                    "size": [image["width"], image["height"]]}):
                warmed["image"] += 1
            ctx = record.get("context") or {}
            recorded = dt.datetime.fromisoformat(record["recorded_at"]).astimezone(dt.UTC)
            weather = weather_from_dict(ctx["weather"]) if ctx.get("weather") else None
            # Only an observed weather of the last half hour: an unknown one is never a cell's weather.
            if ctx.get("place") and weather is not None and weather.known \
                    and now - recorded < dt.timedelta(minutes=30):
                if cache.set_json("context", context_key(ctx["place"], recorded), weather.__dict__):
                    warmed["context"] += 1
    return warmed

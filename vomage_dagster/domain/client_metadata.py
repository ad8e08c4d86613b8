"""The client's metadata on an upload, validated: what the app says about a recording.

Object metadata is user input. Each field is checked and, when it is unusable, replaced
by a documented default — never a crash later in the chain, never a retry that cannot
succeed:

| field (S3 metadata) | valid | otherwise |
|---|---|---|
| `tz` | an IANA zone name (`Europe/Paris`) | UTC |
| `lat`, `lon` | finite, −90…90 and −180…180, both present | no place, no weather |
| `recorded-at` | ISO 8601 within [2020-01-01, now + 10 min]; no offset means UTC | the upload's S3 time |
| `lang` | zh-CN, en-US, ja-JP (or zh, en, ja) | identified from the audio |
| `transcript` | `streaming`: a streamed transcript follows (`domain/streamed.py`) | the batch job |
| `style` | one of the five image styles (`domain/styles.py`) | the mood chooses |
| `user-id` | ignored: the record's user is the user in the object key | |

What was replaced is listed in `corrections` (field names only, never the values).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from vomage_dagster.domain.styles import UnknownStyle, parse_style
from vomage_dagster.domain.transcript import to_transcribe_code

EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(minutes=10)
MAX_FIELD_CHARS = 64


@dataclass(frozen=True)
class ClientMetadata:
    recorded_at: dt.datetime  # UTC
    time_zone: str | None
    lat: float | None
    lon: float | None
    language_hint: str | None
    corrections: tuple[str, ...]
    streamed: bool = False  # the app streamed the audio and sends the transcript beside it
    style: str | None = None  # the image style the user chose; None: the mood chooses


def valid_zone(name: object) -> str | None:
    """`name` if it is a zone the tz database knows, else None."""
    if not isinstance(name, str) or not name or len(name) > MAX_FIELD_CHARS:
        return None
    if name.startswith(("/", ".")) or ".." in name or "\x00" in name:
        return None
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError; a folder an OSError
        return None
    return name


def _number(value: object) -> float | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD_CHARS:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def coordinates(lat: object, lon: object) -> tuple[float, float] | None:
    la, lo = _number(lat), _number(lon)
    if la is None or lo is None or not -90 <= la <= 90 or not -180 <= lo <= 180:
        return None
    return la, lo


def recording_time(value: object, uploaded_at: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The recording time in UTC, or None if it is not a plausible time for this upload."""
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_CHARS:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        when = when.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
    if not EARLIEST <= when <= max(now, uploaded_at) + CLOCK_SKEW:
        return None
    return when


def read(meta: dict, uploaded_at: dt.datetime, now: dt.datetime | None = None) -> ClientMetadata:
    """Validated metadata of an upload whose S3 LastModified is `uploaded_at`."""
    now = now or dt.datetime.now(dt.UTC)
    uploaded_at = uploaded_at.astimezone(dt.UTC)
    corrections = []
    when = recording_time(meta.get("recorded-at"), uploaded_at, now)
    if when is None:
        when = uploaded_at
        if meta.get("recorded-at"):
            corrections.append("recorded-at")
    zone = valid_zone(meta.get("tz"))
    if zone is None and meta.get("tz"):
        corrections.append("tz")
    place = coordinates(meta.get("lat"), meta.get("lon"))
    if place is None and (meta.get("lat") or meta.get("lon")):
        corrections.append("lat/lon")
    raw_lang = meta.get("lang")
    lang = to_transcribe_code(raw_lang) if isinstance(raw_lang, str) and len(raw_lang) <= 16 else None
    if lang is None and raw_lang:
        corrections.append("lang")
    streamed = meta.get("transcript") == "streaming"
    if meta.get("transcript") and not streamed:
        corrections.append("transcript")
    style = image_style(meta.get("style"))
    if style is None and meta.get("style"):
        corrections.append("style")
    return ClientMetadata(when, zone, place[0] if place else None, place[1] if place else None, lang,
                          tuple(corrections), streamed, style)


def image_style(value: object) -> str | None:
    """The style named (`x-amz-meta-style`), or None for none or one not of the five: the
    app refuses another style before the upload; metadata set around the app is not refused,
    the mood then chooses."""
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        return None
    try:
        return parse_style(value)
    except UnknownStyle:
        return None

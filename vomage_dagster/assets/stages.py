"""The six stages of a recording, as plain functions of one recording.

    raw_recording ─┬── transcript ─────────┬── mood ── mood_image ── published_record
                   └── recording_context ──┘

Each stage takes the recording id and the outputs of the stages before it, and returns
its own output (JSON, kept in S3 under `processed/<recording_id>/`) and the few metadata
values the Dagster UI shows. Every output carries the seconds it took and, where a cache
can answer, whether it did. The status a user sees advances here; a `ProcessingError`
is bad input or an unusable answer and ends the recording `failed` with its code (see
`failures`). Nothing here depends on how the stages are scheduled: `assets/recording.py`
runs them, one recording or a batch, in one Dagster step.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dagster import Failure, MetadataValue

from ..domain import audio, client_metadata, costs, prompts, streamed
from ..domain import status as st
from ..domain.context import (
    RecordingContext,
    Weather,
    build_context,
    place_cell,
    season,
    time_bucket,
    zone,
)
from ..domain.errors import NO_SPEECH, RECORDING_ID_TAKEN, ProcessingError
from ..domain.images import png_size, thumbnail
from ..domain.keys import UPLOADS_PREFIX, parse_upload_key, processed_key
from ..domain.mood import mood_from_dict
from ..domain.transcript import Transcript, transcript_from_dict
from ..resources.analyzer import MoodAnalyzer
from ..resources.cache import Cache
from ..resources.events import COMPLETE, MOOD_READY, EventPublisher
from ..resources.painter import ImagePainter
from ..resources.records import RecordsTable
from ..resources.speech import SpeechToText
from ..resources.store import ObjectStore
from ..resources.tracker import ProcessingTracker
from ..resources.weather import WeatherSource
from ..run_tags import UPLOAD_KEY_TAG
from ..settings import load_settings

log = logging.getLogger(__name__)

PREVIEW_CHARS = 160
# How long the transcript stage waits for a streamed transcript the upload promised
# (`transcript: streaming`) before it falls back to the batch job. The app puts the
# sidecar a moment after the stream's last result, ≈ 0.3 s after the audio on AWS.
SIDECAR_WAIT_S = 5.0
SIDECAR_POLL_S = 0.1
# The product plan's processing target, upload → published (the CloudWatch alarm's too).
TARGET_S = 15.0


@dataclass
class StageEnv:
    """What the stages of one run share: its resources and what its tags say."""

    store: ObjectStore
    tracker: ProcessingTracker
    cache: Cache
    speech: SpeechToText
    weather: WeatherSource
    analyzer: MoodAnalyzer
    painter: ImagePainter
    records: RecordsTable
    events: EventPublisher
    run_tags: dict[str, str] = field(default_factory=dict)
    batch: bool = False  # several recordings in this run
    attempts: dict[str, int] = field(default_factory=dict)  # recording → the attempt this run is for
    claim: str = ""  # the claim the planner requested this run under; "" for a run started by hand
    checks: set[str] = field(default_factory=set)  # assets whose quality checks this run reports


def media_copy_key(recording_id: str, extension: str) -> str:
    """Where the validated upload is copied for transcription (short-lived, see retention)."""
    return f"media/{recording_id}.{extension or 'bin'}"


def _pinned(call: Any, *args: Any, **kwargs: Any) -> Any:
    """An S3 call on the upload; a vanished or replaced upload is a clear error, not internal."""
    from botocore.exceptions import ClientError

    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ProcessingError("not_found", "the upload no longer exists") from exc
        if code in ("412", "PreconditionFailed"):
            raise ProcessingError("upload_changed", "the upload was replaced while it was processed",
                                  retryable=True) from exc
        raise


def _find_upload_key(env: StageEnv, recording_id: str) -> tuple[str, bool]:
    """The upload's key, and whether the status table knows the recording already.

    A one-recording run from a sensor carries the key in a tag; a batch or a run
    started by hand looks it up in the status table (registered by the sensor) and,
    failing that, in the bucket."""
    key = env.run_tags.get(UPLOAD_KEY_TAG)
    if key and not env.batch:
        return key, True
    item = env.tracker.status.get(recording_id)
    if item and item.get("upload_key"):
        return item["upload_key"], True
    found = [obj.key for obj in env.store.list(UPLOADS_PREFIX)
             if (parsed := parse_upload_key(obj.key)) and parsed.recording_id == recording_id]
    if len(found) > 1:  # two users' uploads claim the id: neither may take the other's record
        raise ProcessingError(RECORDING_ID_TAKEN, f"{len(found)} uploads claim recording {recording_id}")
    if found:
        return found[0], item is not None
    raise ProcessingError("not_found", f"no upload found for recording {recording_id}")


def raw_recording(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    started = time.perf_counter()
    key, registered = _find_upload_key(env, rid)
    if not registered:
        env.tracker.register(rid, key)
    parsed = parse_upload_key(key)
    if parsed is None or parsed.recording_id != rid:
        raise ProcessingError("not_found", "the upload's key does not name this recording")
    head = _pinned(env.store.head, key)
    if head["ContentLength"] > audio.MAX_BYTES:
        raise ProcessingError(audio.TOO_LARGE,
                              f"the file is {head['ContentLength']} bytes, over {audio.MAX_BYTES}")
    # The bytes validated here are the bytes transcribed: read and copy only this ETag.
    etag = head["ETag"]
    decoded = audio.decode_and_validate(_pinned(env.store.get_bytes, key, if_match=etag))
    media_key = media_copy_key(rid, parsed.extension)
    _pinned(env.store.copy, key, media_key, if_match=etag)
    meta = client_metadata.read(head.get("Metadata", {}), head["LastModified"])
    out = {
        "recording_id": rid,
        "upload_key": key,
        "media_key": media_key,
        "etag": etag,
        # The key's user: object metadata is the client's word and cannot move a post.
        "user_id": parsed.user_id,
        "sha256": decoded.sha256,
        "duration_s": round(decoded.duration_s, 3),
        "format": decoded.source_format,
        "codec": decoded.source_codec,
        "size_bytes": head["ContentLength"],
        "uploaded_at": head["LastModified"].astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        "recorded_at": meta.recorded_at.isoformat(),
        "time_zone": meta.time_zone,
        # Only as precise as the place cell the record keeps (0.1°, about 11 km).
        "lat": round(meta.lat, 1) if meta.lat is not None else None,
        "lon": round(meta.lon, 1) if meta.lon is not None else None,
        "language_hint": meta.language_hint,
        "transcript_streamed": meta.streamed,
        "metadata_corrections": list(meta.corrections),
        "seconds": round(time.perf_counter() - started, 3),
    }
    env.tracker.advance(rid, st.TRANSCRIBING)
    return out, {
        "duration_s": out["duration_s"],
        "format": f"{out['format']}/{out['codec']}",
        "language_hint": out["language_hint"] or "auto",
        "metadata_corrected": ", ".join(out["metadata_corrections"]) or "none",
        "seconds": out["seconds"],
    }


def _streamed_transcript(env: StageEnv, raw: dict) -> tuple[Transcript | None, str]:
    """The streamed transcript the upload promised, validated; or None and why not.

    Only runs the ingest planned take it (a claim tag): a run started by hand, a UI
    backfill or a reprocessing transcribes with the batch job, as before streaming."""
    if not raw.get("transcript_streamed"):
        return None, "the upload promised no streamed transcript"
    if not env.claim:
        return None, "runs started by hand and backfills use the batch job"
    key = streamed.sidecar_key(raw["user_id"], raw["recording_id"])
    deadline = time.monotonic() + SIDECAR_WAIT_S
    while (found := env.store.get_bytes_or_none(key)) is None:
        if time.monotonic() > deadline:
            return None, f"no sidecar within {SIDECAR_WAIT_S:.0f} s"
        time.sleep(SIDECAR_POLL_S)
    try:
        return streamed.validate(found, raw["recording_id"], raw["duration_s"], raw["language_hint"]), ""
    except streamed.Rejected as exc:
        return None, f"sidecar refused: {exc}"


def transcript(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    raw = inputs["raw_recording"]
    started = time.perf_counter()
    result, fallback = _streamed_transcript(env, raw)
    source = "streaming" if result is not None else "batch"
    cached = None
    if result is None:
        cached = env.cache.get_json("transcribe", raw["sha256"])
        if cached is not None:
            result = transcript_from_dict(cached)
        else:
            result = env.speech.transcribe(raw.get("media_key") or raw["upload_key"], raw["sha256"],
                                           raw["language_hint"])
    if not result.text.strip():
        raise ProcessingError(NO_SPEECH, "no speech was recognised in the recording")
    if source == "batch" and cached is None:
        # Only Transcribe's answers are cached by audio hash: a streamed transcript is the
        # app's word for one recording, not a result later runs of that audio may reuse.
        env.cache.set_json("transcribe", raw["sha256"], result.as_dict())
    out = {**result.as_dict(), "source": source, "cache_hit": cached is not None,
           "seconds": round(time.perf_counter() - started, 3)}
    if raw.get("transcript_streamed") and source == "batch":
        out["streaming_fallback"] = fallback
    # Results as they come: the app shows the words before the mood and the image exist.
    env.tracker.advance(rid, st.TRANSCRIBING, transcript={"text": result.text, "language": result.language,
                                                          "source": source})
    preview = result.text[:PREVIEW_CHARS] if load_settings().metadata_transcript else \
        f"({len(result.text)} characters; VOMAGE_METADATA_TRANSCRIPT=off keeps the text out of Dagster)"
    return out, {
        "preview": MetadataValue.text(preview),
        "language": result.language,
        "confidence": result.confidence,
        "source": source,
        **({"streaming_fallback": out["streaming_fallback"]} if "streaming_fallback" in out else {}),
        "cache_hit": MetadataValue.bool(out["cache_hit"]),
        "seconds": out["seconds"],
    }


def recording_context(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    raw = inputs["raw_recording"]
    started = time.perf_counter()
    when = dt.datetime.fromisoformat(raw["recorded_at"]).astimezone(dt.UTC)
    lat, lon = raw["lat"], raw["lon"]
    place = place_cell(lat, lon)
    found = None
    cache_hit = False
    if place is not None:
        key = f"{place}:{time_bucket(when)}"
        cached = env.cache.get_json("context", key)
        cache_hit = cached is not None
        if cached is not None:
            found = Weather(**cached)
        else:
            local = when.astimezone(zone(raw["time_zone"]))
            found = env.weather.weather_at(place, when, season(local.month, lat))
            env.cache.set_json("context", key, found.__dict__)
    ctx = build_context(when, raw["time_zone"], lat, lon, found)
    out = {**ctx.as_dict(), "cache_hit": cache_hit,
           "seconds": round(time.perf_counter() - started, 3)}
    return out, {
        "time_of_day": ctx.time_of_day,
        "season": ctx.season,
        "weather": ctx.weather.condition if ctx.weather else "unknown",
        "seconds": out["seconds"],
    }


def mood(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    text, where = inputs["transcript"], inputs["recording_context"]
    started = time.perf_counter()
    env.tracker.advance(rid, st.ANALYZING)
    key = prompts.analysis_cache_key(text["text"], text["language"], env.analyzer.model_id)
    cached = env.cache.get_json("analysis", key)
    usage: dict = {}
    saved_usage: dict = {}
    if cached is not None:
        # The cached entry keeps the tokens of the call it stands for: what a hit saves.
        saved_usage = cached.pop("usage", None) or {}
        result = mood_from_dict(cached)
    else:
        result, usage = env.analyzer.analyze(text["text"], text["language"])
        env.cache.set_json("analysis", key, {**result.as_dict(), "usage": usage})
    ctx_fields = {k: v for k, v in where.items() if k not in ("cache_hit", "seconds")}
    weather = Weather(**ctx_fields["weather"]) if ctx_fields.get("weather") else None
    ctx = RecordingContext(**{**ctx_fields, "weather": weather})
    image_prompt = prompts.image_prompt(result, ctx)
    out = {**result.as_dict(), "image_prompt": image_prompt, "model_id": env.analyzer.model_id,
           "prompt_version": prompts.PROMPT_VERSION, "usage": usage, "saved_usage": saved_usage,
           "cache_hit": cached is not None, "seconds": round(time.perf_counter() - started, 3)}
    # The post can be shown now (words, mood, colours) while its image is painted.
    shown = mood_view(out)
    env.tracker.advance(rid, st.GENERATING, mood=shown)
    try:
        env.events.publish(MOOD_READY, {"recording_id": rid, "mood": shown})
    except Exception as exc:  # an early notice: the status has it, and Complete follows; never fail the post
        log.warning("recording %s: the Mood Ready event was not sent (%s)", rid, type(exc).__name__)
    return out, {
        "primary_emotion": result.primary_emotion,
        "confidence": result.confidence,
        "valence": result.valence,
        "intensity": result.intensity,
        "image_prompt": MetadataValue.text(image_prompt),
        "cache_hit": MetadataValue.bool(out["cache_hit"]),
        "seconds": out["seconds"],
    }


MOOD_VIEW_FIELDS = ("primary_emotion", "intensity", "valence", "arousal", "keywords", "summary")


def mood_view(found: dict) -> dict:
    """What the app shows of a mood before the image exists: the mood and its colours."""
    return {**{k: found[k] for k in MOOD_VIEW_FIELDS if k in found},
            "palette": prompts.PALETTES.get(found.get("primary_emotion", ""), "")}


def mood_image(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    found = inputs["mood"]
    started = time.perf_counter()
    image_key = processed_key(rid, "image.png")
    thumb_key = processed_key(rid, "thumbnail.png")
    env.tracker.advance(rid, st.GENERATING)
    prompt_hash = prompts.image_cache_key(found["image_prompt"], env.painter.model_id)
    cached = env.cache.get_json("image", prompt_hash)
    cache_hit = cached is not None and env.store.exists(cached["image_key"])
    if cache_hit:
        if cached["image_key"] != image_key:
            env.store.copy(cached["image_key"], image_key)
            env.store.copy(cached["thumbnail_key"], thumb_key)
        small = env.store.get_bytes(thumb_key)
        size = tuple(cached["size"])
    else:
        png = env.painter.paint(found["image_prompt"])
        size = png_size(png)
        small = thumbnail(png)
        env.store.put_bytes(image_key, png, "image/png")
        env.store.put_bytes(thumb_key, small, "image/png")
        env.cache.set_json("image", prompt_hash, {"image_key": image_key,
                                              "thumbnail_key": thumb_key, "size": size})
    out = {"image_key": image_key, "thumbnail_key": thumb_key, "width": size[0],
           "height": size[1], "prompt_hash": prompt_hash, "model_id": env.painter.model_id,
           "cache_hit": cache_hit, "seconds": round(time.perf_counter() - started, 3)}
    return out, {
        "thumbnail": MetadataValue.md(f"![mood image]({_image_source(env.store, thumb_key, small)})"),
        "image": MetadataValue.url(env.store.browser_url(image_key)),
        "size": f"{size[0]}×{size[1]}",
        "cache_hit": MetadataValue.bool(cache_hit),
        "seconds": out["seconds"],
    }


def _seconds_since(iso_time: str | None) -> float | None:
    """Seconds from `iso_time` to now (None without one: outputs written before it was kept)."""
    if not iso_time:
        return None
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(iso_time)).total_seconds()


def _image_source(store: ObjectStore, key: str, png: bytes) -> str:
    """Where the UI loads the thumbnail from. A short link renders inline in the asset's
    metadata (a long value hides behind "[Show Markdown]"), so on the local stack it is the
    object's URL; on AWS the console page is no image, so the PNG itself, as a data URI."""
    url = store.browser_url(key)
    return url if url.startswith("http://") else f"data:image/png;base64,{base64.b64encode(png).decode()}"


def utc_day(iso_time: str) -> str:
    """The UTC date a record belongs to in the daily tables."""
    return dt.datetime.fromisoformat(iso_time).astimezone(dt.UTC).date().isoformat()


STAGE_INPUTS = ("raw_recording", "transcript", "recording_context", "mood", "mood_image")


def publish_once(tracker: ProcessingTracker, records: RecordsTable, record: dict,
                 attempt: int | None) -> bool:
    """Write the record and mark the recording complete, only if this run still owns it.

    A run can outlive the decision that it was dead (the stranded sensor failed its
    recording), and a recording can be retried while an old run of it is still going:
    such a run must publish nothing. The status is checked before the record is written
    and the completion is conditional on the attempt; a completion refused after the
    write removes the record again, unless another run of the same attempt completed it
    (then the one record stays, and this run announces nothing). True if this run
    completed the recording; a `Failure` if it no longer owns it.
    """
    rid = record["recording_id"]

    def superseded(item: dict | None) -> Failure:
        now = "unknown" if item is None else (
            f"{item.get('stage')}" + (f" ({item['error']['code']})" if item.get("error") else "")
            + f", attempt {item.get('attempt', 1)}")
        return Failure(description=f"not published: the recording is now {now}, not this run's to end",
                       metadata={"error_code": "superseded"}, allow_retries=False)

    def ours(item: dict | None) -> bool:
        return item is not None and (attempt is None or int(item.get("attempt", 1)) == attempt)

    current = tracker.status.get(rid)
    if ours(current) and current.get("stage") == st.COMPLETE:
        if attempt is None:  # a person re-materializing a complete recording: the record follows
            records.put(record)
        return False  # (a duplicate run of this attempt: the record exists already)
    if not ours(current) or current.get("stage") in st.TERMINAL:
        raise superseded(current)
    records.put(record)
    if tracker.complete(rid, attempt):
        return True
    current = tracker.status.get(rid)
    if ours(current) and current.get("stage") == st.COMPLETE:
        return False
    records.delete(record)
    raise superseded(current)


def published_record(env: StageEnv, rid: str, inputs: dict) -> tuple[dict, dict]:
    started = time.perf_counter()
    raw, text, where, found, image = (inputs[name] for name in STAGE_INPUTS)
    record = {
        "recording_id": rid,
        "user_id": raw["user_id"],
        "created_at": f"{raw['recorded_at']}#{rid}",
        "recorded_at": raw["recorded_at"],
        "day": utc_day(raw["recorded_at"]),
        "upload_key": raw["upload_key"],
        "duration_s": raw["duration_s"],
        "audio_sha256": raw["sha256"],
        "language": text["language"],
        "transcript": text["text"],
        "transcript_confidence": text["confidence"],
        "context": {k: v for k, v in where.items() if k not in ("cache_hit", "seconds")},
        "mood": {k: found[k] for k in ("primary_emotion", "confidence", "secondary_emotions",
                                       "intensity", "valence", "arousal", "keywords",
                                       "summary", "image_prompt")},
        "image_key": image["image_key"],
        "thumbnail_key": image["thumbnail_key"],
        "models": {"analysis": found["model_id"], "image": image["model_id"],
                   "prompt_version": found["prompt_version"]},
        "usage": found.get("usage") or {},
        "cost_usd": costs.recording_cost(
            raw["duration_s"], found["model_id"], found.get("usage") or found.get("saved_usage") or None,
            image["model_id"], {name: bool(out.get("cache_hit")) for name, out in inputs.items()}),
        "seconds": {name: out["seconds"] for name, out in inputs.items()},
        "cache_hits": {name: out["cache_hit"] for name, out in inputs.items()
                       if "cache_hit" in out},
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }
    if publish_once(env.tracker, env.records, record, env.attempts.get(rid)):
        env.events.publish(COMPLETE, {"recording_id": rid, "image_key": record["image_key"],
                                  "primary_emotion": record["mood"]["primary_emotion"]})
    record["seconds"]["published_record"] = round(time.perf_counter() - started, 3)
    since_upload = _seconds_since(raw.get("uploaded_at"))
    sla = {} if since_upload is None else {
        "upload_to_published_s": round(since_upload, 2),
        f"within_{TARGET_S:.0f}s": MetadataValue.bool(since_upload <= TARGET_S)}
    return record, {
        **sla,
        "primary_emotion": record["mood"]["primary_emotion"],
        "language": record["language"],
        "seconds_total": round(sum(record["seconds"].values()), 3),
        "cost_usd": record["cost_usd"]["total"],
        "saved_usd": record["cost_usd"]["saved"],
    }


STAGES = {stage.__name__: stage for stage in
          (raw_recording, transcript, recording_context, mood, mood_image, published_record)}
# What each stage reads: the outputs of these stages, for the same recording.
INPUTS = {"raw_recording": (), "transcript": ("raw_recording",), "recording_context": ("raw_recording",),
          "mood": ("transcript", "recording_context"), "mood_image": ("mood",),
          "published_record": STAGE_INPUTS}

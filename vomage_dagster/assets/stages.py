"""The six stages of a recording, as plain functions of one recording.

    raw_recording ─┬── transcript ─────────┬── mood ── mood_image ── published_record
                   └── recording_context ──┘

Each stage takes the systems it talks to (`StageResources`), the attempt of the recording
this run owns (`domain.lifecycle.Attempt`) and the outputs of the stages it reads
(`INPUTS`), and returns its own output (JSON, kept in S3 under `processed/<recording_id>/`) and the few metadata
values the Dagster UI shows. Every output carries the seconds it took and, where a cache
can answer, whether it did. The status a user sees advances here; a `ProcessingError`
is bad input or an unusable answer and ends the recording `failed` with its code (see
`failures`). Nothing here depends on how the stages are scheduled: `assets/runner.py`
runs them, side by side where `INPUTS` allows, one recording or a batch in one Dagster step.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from dagster import Failure, MetadataValue

from vomage_dagster.domain import audio, client_metadata, costs, image_models, prompts, streamed, styles
from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.context import (
    RecordingContext,
    Weather,
    build_context,
    place_cell,
    season,
    unknown_weather,
    weather_from_dict,
    zone,
)
from vomage_dagster.domain.errors import NO_SPEECH, ProcessingError
from vomage_dagster.domain.images import png_size, thumbnail
from vomage_dagster.domain.keys import parse_upload_key, processed_key
from vomage_dagster.domain.lifecycle import Attempt
from vomage_dagster.domain.mood import mood_from_dict
from vomage_dagster.domain.transcript import Transcript, transcript_from_dict
from vomage_dagster.resources.analyzer import MoodAnalyzer
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.context_cache import ContextCache, context_key
from vomage_dagster.resources.events import COMPLETE, MOOD_READY, EventPublisher
from vomage_dagster.resources.painter import ImagePainter
from vomage_dagster.resources.speech import SpeechToText
from vomage_dagster.resources.store import ObjectStore
from vomage_dagster.resources.tracker import ProcessingTracker, Superseded
from vomage_dagster.resources.weather import WeatherSource
from vomage_dagster.settings import load_settings
from vomage_dagster.telemetry import tracing, waterfall

log = logging.getLogger(__name__)

PREVIEW_CHARS = 160
# How long the transcript stage waits for a streamed transcript the upload promised
# (`transcript: streaming`) before it falls back to the batch job. The app puts the
# sidecar a moment after the stream's last result, ≈ 0.3 s after the audio on AWS.
SIDECAR_WAIT_S = 5.0
SIDECAR_POLL_S = 0.1
# How long the mood stage waits for the ingest's early mood call already in flight.
EARLY_MOOD_WAIT_S = 8.0
# The product plan's processing target, upload → published (the CloudWatch alarm's too).
TARGET_S = 15.0


@dataclass
class StageResources:
    """What every stage of every recording of a run uses: the systems it talks to."""

    store: ObjectStore
    tracker: ProcessingTracker
    cache: Cache
    speech: SpeechToText
    weather: WeatherSource
    analyzer: MoodAnalyzer
    painter: ImagePainter
    events: EventPublisher

    def advance(self, att: Attempt, stage: str, **shown: object) -> bool:
        """Move `att`'s recording on (while the run owns it), with what the app may show."""
        return self.tracker.advance(att.recording_id, stage, att.number, att.owner, **shown)


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


def raw_recording(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    started = time.perf_counter()
    rid, key = att.recording_id, att.upload_key
    parsed = parse_upload_key(key)
    if parsed is None or parsed.recording_id != rid:
        raise ProcessingError("not_found", "the upload's key does not name this recording")
    head = _pinned(res.store.head, key)
    if head["ContentLength"] > audio.MAX_BYTES:
        raise ProcessingError(audio.TOO_LARGE,
                              f"the file is {head['ContentLength']} bytes, over {audio.MAX_BYTES}")
    # The bytes validated here are the bytes transcribed: read and copy only this ETag.
    etag = head["ETag"]
    decoded = audio.decode_and_validate(_pinned(res.store.get_bytes, key, if_match=etag))
    meta = client_metadata.read(head.get("Metadata", {}), head["LastModified"])
    out = {
        "recording_id": rid,
        "upload_key": key,
        # Where Transcribe reads it, copied only if the batch job is needed (`transcript`).
        "media_key": media_copy_key(rid, parsed.extension),
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
        "style": meta.style,
        "metadata_corrections": list(meta.corrections),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not meta.streamed:
        # A batch job takes seconds: the app shows it from here. A streamed transcript is
        # shown with its words by `transcript` a moment later, so that write says it.
        res.advance(att, life.TRANSCRIBING)
    return out, {
        "duration_s": out["duration_s"],
        "format": f"{out['format']}/{out['codec']}",
        "language_hint": out["language_hint"] or "auto",
        "metadata_corrected": ", ".join(out["metadata_corrections"]) or "none",
        "seconds": out["seconds"],
    }


def _streamed_transcript(res: StageResources, att: Attempt, raw: dict) -> tuple[Transcript | None, str]:
    """The streamed transcript the upload promised, validated; or None and why not.

    Only runs the ingest launched take it: a run started by hand, a UI backfill or a
    reprocessing transcribes with the batch job, as before streaming."""
    if not raw.get("transcript_streamed"):
        return None, "the upload promised no streamed transcript"
    if not att.ingested:
        return None, "runs started by hand and backfills use the batch job"
    key = streamed.sidecar_key(raw["user_id"], raw["recording_id"])
    deadline = time.monotonic() + SIDECAR_WAIT_S
    while (found := res.store.get_bytes_or_none(key)) is None:
        if time.monotonic() > deadline:
            return None, f"no sidecar within {SIDECAR_WAIT_S:.0f} s"
        time.sleep(SIDECAR_POLL_S)
    try:
        return streamed.validate(found, raw["recording_id"], raw["duration_s"], raw["language_hint"]), ""
    except streamed.Rejected as exc:
        return None, f"sidecar refused: {exc}"


def _media_copy(res: StageResources, raw: dict) -> str:
    """The short-lived copy Transcribe reads, made only when the batch job is needed (a
    streamed transcript needs none): of the validated bytes only (their ETag), so a
    replaced upload is a clear error, never another file transcribed."""
    media_key = raw.get("media_key")
    if not media_key:
        return raw["upload_key"]
    _pinned(res.store.copy, raw["upload_key"], media_key, if_match=raw.get("etag"))
    return media_key


def transcript(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    raw = inputs["raw_recording"]
    started = time.perf_counter()
    result, fallback = _streamed_transcript(res, att, raw)
    source = "streaming" if result is not None else "batch"
    cached = None
    if result is None:
        cached = res.cache.get_json("transcribe", raw["sha256"])
        if cached is not None:
            result = transcript_from_dict(cached)
        else:
            result = res.speech.transcribe(_media_copy(res, raw), raw["sha256"], raw["language_hint"])
    if not result.text.strip():
        raise ProcessingError(NO_SPEECH, "no speech was recognised in the recording")
    if source == "batch" and cached is None:
        # Only Transcribe's answers are cached by audio hash: a streamed transcript is the
        # app's word for one recording, not a result later runs of that audio may reuse.
        res.cache.set_json("transcribe", raw["sha256"], result.as_dict())
    out = {**result.as_dict(), "source": source, "cache_hit": cached is not None,
           "seconds": round(time.perf_counter() - started, 3)}
    if raw.get("transcript_streamed") and source == "batch":
        out["streaming_fallback"] = fallback
    # Results as they come: the app shows the words before the mood and the image exist.
    res.advance(att, life.TRANSCRIBING, transcript={"text": result.text, "language": result.language,
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


def _weather(res: StageResources, when: dt.datetime, lat: float | None, lon: float | None,
             tz_name: str | None) -> tuple[Weather | None, bool]:
    """The weather of the recording's place cell and half hour, and whether the cache
    answered. None without a place; `unknown` (with why) when the provider cannot tell."""
    place = place_cell(lat, lon)
    if place is None or lat is None or lon is None:
        return None, False
    contexts = ContextCache(res.cache)
    key = context_key(place, when)
    cached = contexts.get(key)
    if cached is not None:
        return cached, True
    failure = contexts.recent_failure(key)
    if failure is not None:  # asked a moment ago for this cell: no second wait for the timeout
        return unknown_weather(res.weather.provider, f"{failure} (for this place moments ago)"), True
    found = res.weather.weather_at(lat, lon, when, season(when.astimezone(zone(tz_name)).month, lat))
    contexts.put(key, found)
    return found, False


def context_view(ctx: RecordingContext) -> dict:
    """What the app shows of the context that goes into the picture: place, weather, time."""
    weather = ctx.weather
    return {"place": ctx.place, "local_time": ctx.local_time, "time_of_day": ctx.time_of_day,
            "season": ctx.season, "style": ctx.style,
            "weather": None if weather is None else {
                "condition": weather.condition, "temperature_c": weather.temperature_c,
                "source": weather.source, **({"reason": weather.reason} if weather.reason else {})}}


def recording_context(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    raw = inputs["raw_recording"]
    started = time.perf_counter()
    when = dt.datetime.fromisoformat(raw["recorded_at"]).astimezone(dt.UTC)
    lat, lon = raw["lat"], raw["lon"]
    found, cache_hit = _weather(res, when, lat, lon, raw["time_zone"])
    ctx = build_context(when, raw["time_zone"], lat, lon, found, raw.get("style"))
    out = {**ctx.as_dict(), "cache_hit": cache_hit,
           "seconds": round(time.perf_counter() - started, 3)}
    # The app shows what goes into the picture as soon as it is known, and the user's
    # messages are in the upload's language from here on (else the one heard).
    hint = {"language": raw["language_hint"]} if raw.get("language_hint") else {}
    res.advance(att, life.TRANSCRIBING, context=context_view(ctx), **hint)
    weather = "none (no place)" if found is None else found.condition if found.known else \
        f"unknown: {found.reason}"
    return out, {
        "time_of_day": ctx.time_of_day,
        "season": ctx.season,
        "weather": weather,
        "weather_source": found.source if found else "-",
        "style": ctx.style or "from the mood",
        "cache_hit": MetadataValue.bool(cache_hit),
        "seconds": out["seconds"],
    }


def mood(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    text, where = inputs["transcript"], inputs["recording_context"]
    started = time.perf_counter()
    rid = att.recording_id
    key = prompts.analysis_cache_key(text["text"], text["language"], res.analyzer.model_id)
    cached = res.cache.get_json("analysis", key)
    if cached is None:  # the model is asked (or the ingest's call awaited): the app shows it
        res.advance(att, life.ANALYZING)
        cached = _analysis_or_wait(res.cache, key)
    usage: dict = {}
    saved_usage: dict = {}
    early = cached is not None and cached.pop("prefetched_for", None) == rid
    if early:  # asked by the ingest for this recording while its run started: its own call
        usage = cached.pop("usage", None) or {}
        result = mood_from_dict(cached)
        cached = None
        res.cache.set_json("analysis", key, {**result.as_dict(), "usage": usage})  # a plain entry from now on
    elif cached is not None:
        # The cached entry keeps the tokens of the call it stands for: what a hit saves.
        saved_usage = cached.pop("usage", None) or {}
        result = mood_from_dict(cached)
    else:
        result, usage = res.analyzer.analyze(text["text"], text["language"])
        res.cache.set_json("analysis", key, {**result.as_dict(), "usage": usage})
    ctx_fields = {k: v for k, v in where.items() if k not in ("cache_hit", "seconds")}
    weather = weather_from_dict(ctx_fields["weather"]) if ctx_fields.get("weather") else None
    ctx = RecordingContext(**{**ctx_fields, "weather": weather})
    image_prompt = prompts.image_prompt(result, ctx)
    out = {**result.as_dict(), "image_prompt": image_prompt, "model_id": res.analyzer.model_id,
           "prompt_version": prompts.PROMPT_VERSION, "usage": usage, "saved_usage": saved_usage,
           "cache_hit": cached is not None, "early": early, "seconds": round(time.perf_counter() - started, 3)}
    # The post can be shown now (words, mood, colours) while its image is painted.
    shown = mood_view(out)
    # What the picture will be painted in is known with the mood: shown in the same write.
    res.advance(att, life.GENERATING, mood=shown, style=styles.style_in(image_prompt))
    out["mood_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")  # when the app can show it
    try:
        res.events.publish(MOOD_READY, {"recording_id": rid, "mood": shown})
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


def _analysis_or_wait(cache: Cache, key: str) -> dict | None:
    """The cached analysis for `key`; while the ingest's early call for it is in flight
    (`ingest/early_mood.py`), wait for its answer rather than ask the model again."""
    found = cache.get_json("analysis", key)
    deadline = time.monotonic() + EARLY_MOOD_WAIT_S
    while found is None and cache.get_json("analysis-pending", key) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
        found = cache.get_json("analysis", key)
    return found


MOOD_VIEW_FIELDS = ("primary_emotion", "intensity", "valence", "arousal", "keywords", "summary")


def mood_view(found: dict) -> dict:
    """What the app shows of a mood before the image exists: the mood and its colours."""
    return {**{k: found[k] for k in MOOD_VIEW_FIELDS if k in found},
            "palette": prompts.PALETTES.get(found.get("primary_emotion", ""), "")}


def mood_image(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    found = inputs["mood"]
    started = time.perf_counter()
    rid = att.recording_id
    image_key = processed_key(rid, "image.png")
    thumb_key = processed_key(rid, "thumbnail.png")
    prompt = found["image_prompt"]
    style = styles.style_in(prompt)  # shown since the mood (`mood`)
    # A picture of one's own: the recording's seed, and a cache entry only this recording
    # of this user finds (a retry or a reprocessing of it reuses its own picture).
    seed = image_models.recording_seed(rid)
    parsed = parse_upload_key(att.upload_key)
    cache_key = prompts.image_cache_key(prompt, res.painter.model_id, seed,
                                        parsed.user_id if parsed is not None else "")
    cached = res.cache.get_json("image", cache_key)
    cache_hit = (cached is not None and cached.get("image_key") == image_key
                 and res.store.exists(image_key) and res.store.exists(thumb_key))
    if cache_hit:
        small = res.store.get_bytes(thumb_key)
        size = tuple(cached["size"])
    else:
        png = res.painter.paint(prompt, seed)
        size = png_size(png)
        small = thumbnail(png)
        res.store.put_bytes(image_key, png, "image/png")
        res.store.put_bytes(thumb_key, small, "image/png")
        res.cache.set_json("image", cache_key, {"image_key": image_key,
                                                "thumbnail_key": thumb_key, "size": size})
    # `prompt_hash` names the image cache's entry (prompt, model, seed, user): erasure and
    # cache warming read it there.
    out = {"image_key": image_key, "thumbnail_key": thumb_key, "width": size[0],
           "height": size[1], "prompt_hash": cache_key, "seed": seed, "style": style,
           "model_id": res.painter.model_id,
           "cache_hit": cache_hit, "seconds": round(time.perf_counter() - started, 3)}
    return out, {
        "thumbnail": MetadataValue.md(f"![mood image]({_image_source(res.store, thumb_key, small)})"),
        "image": MetadataValue.url(res.store.browser_url(image_key)),
        "size": f"{size[0]}×{size[1]}",
        "style": style or "-",
        "seed": seed,
        "cache_hit": MetadataValue.bool(cache_hit),
        "seconds": out["seconds"],
    }


def trace_timeline(recording_id: str) -> str:
    """The part of the recording's trace this run made (and its root, once published), as
    a table for the `published_record` partition; `vomage trace` shows the whole trace."""
    spans = tracing.spans_of(recording_id)
    return waterfall.table(waterfall.from_readable(spans), markdown=True) if spans else ""


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


def published_record(res: StageResources, att: Attempt, inputs: dict) -> tuple[dict, dict]:
    started = time.perf_counter()
    rid = att.recording_id
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
    # What the user waited for, from the same clock readings the recording's trace uses:
    # the upload's arrival in S3, the mood on screen, the record published.
    record["transcript_source"] = text.get("source", "batch")
    if raw.get("uploaded_at"):
        record["uploaded_at"] = raw["uploaded_at"]
        record["upload_to_published_s"] = round(
            (dt.datetime.fromisoformat(record["published_at"]) - dt.datetime.fromisoformat(raw["uploaded_at"]))
            .total_seconds(), 3)
        if found.get("mood_at"):
            record["upload_to_mood_s"] = round(
                (dt.datetime.fromisoformat(found["mood_at"]) - dt.datetime.fromisoformat(raw["uploaded_at"]))
                .total_seconds(), 3)
    if att.rematerialize:  # a person re-running a complete recording: the record follows
        res.tracker.records.put(record)
    else:
        try:
            res.tracker.publish(record, att.number, att.owner)
        except Superseded as exc:
            raise Failure(description=f"not published: {exc}", metadata={"error_code": "superseded"},
                          allow_retries=False) from exc
        res.events.publish(COMPLETE, {"recording_id": rid, "image_key": record["image_key"],
                                      "primary_emotion": record["mood"]["primary_emotion"]})
    record["seconds"]["published_record"] = round(time.perf_counter() - started, 3)
    since_upload = record.get("upload_to_published_s")
    sla = {} if since_upload is None else {
        "upload_to_published_s": round(since_upload, 2),
        f"within_{TARGET_S:.0f}s": MetadataValue.bool(since_upload <= TARGET_S)}
    timeline = trace_timeline(rid)
    if timeline:
        sla["trace"] = MetadataValue.md(timeline)
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

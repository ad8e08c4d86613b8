"""The daily table of processed records: its schema, rows (with their cost) and the file.

One row per published record. The schema is explicit (pyarrow) so a reader never has to
guess a type, and `check_schema` is what the asset check runs on the written file.
"""

from __future__ import annotations

import io
from typing import Any

from vomage_dagster.domain import costs

STAGES = ("raw_recording", "transcript", "recording_context", "mood", "mood_image",
          "published_record")


def schema() -> Any:
    import pyarrow as pa

    fields = [
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("published_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("duration_s", pa.float64()),
        pa.field("language", pa.string()),
        pa.field("transcript_chars", pa.int32()),
        pa.field("transcript_confidence", pa.float64()),
        pa.field("primary_emotion", pa.string()),
        pa.field("emotion_confidence", pa.float64()),
        pa.field("intensity", pa.float64()),
        pa.field("valence", pa.float64()),
        pa.field("arousal", pa.float64()),
        pa.field("keywords", pa.list_(pa.string())),
        pa.field("time_of_day", pa.string()),
        pa.field("season", pa.string()),
        pa.field("day_type", pa.string()),
        pa.field("local_hour", pa.int8()),
        pa.field("place", pa.string()),
        pa.field("weather", pa.string()),
        *[pa.field(f"seconds_{s}", pa.float64()) for s in STAGES],
        pa.field("seconds_total", pa.float64()),
        pa.field("cache_hits", pa.int8()),
        pa.field("analysis_model", pa.string()),
        pa.field("image_model", pa.string()),
        pa.field("prompt_version", pa.string()),
        pa.field("cost_usd", pa.float64()),
        pa.field("cost_transcript_usd", pa.float64()),
        pa.field("cost_mood_usd", pa.float64()),
        pa.field("cost_image_usd", pa.float64()),
        pa.field("saved_usd", pa.float64()),
    ]
    return pa.schema(fields)


def to_row(record: dict) -> dict:
    import datetime as dt

    ctx = record.get("context") or {}
    mood = record.get("mood") or {}
    seconds = record.get("seconds") or {}
    cost = costs.record_cost(record)
    local = ctx.get("local_time")
    return {
        "recording_id": record["recording_id"],
        "user_id": record["user_id"],
        "recorded_at": dt.datetime.fromisoformat(record["recorded_at"]).astimezone(dt.UTC),
        "published_at": dt.datetime.fromisoformat(record["published_at"]).astimezone(dt.UTC),
        "duration_s": float(record.get("duration_s", 0)),
        "language": record.get("language"),
        "transcript_chars": len(record.get("transcript", "")),
        "transcript_confidence": float(record.get("transcript_confidence", 0)),
        "primary_emotion": mood.get("primary_emotion"),
        "emotion_confidence": float(mood.get("confidence", 0)),
        "intensity": float(mood.get("intensity", 0)),
        "valence": float(mood.get("valence", 0)),
        "arousal": float(mood.get("arousal", 0)),
        "keywords": list(mood.get("keywords", [])),
        "time_of_day": ctx.get("time_of_day"),
        "season": ctx.get("season"),
        "day_type": ctx.get("day_type"),
        "local_hour": dt.datetime.fromisoformat(local).hour if local else None,
        "place": ctx.get("place"),
        "weather": (ctx.get("weather") or {}).get("condition"),
        # A stage the record has no time for is null, not 0: the VoiceRecords row is
        # written inside published_record, before that stage's own time is known.
        **{f"seconds_{s}": float(seconds[s]) if s in seconds else None for s in STAGES},
        "seconds_total": round(sum(float(v) for v in seconds.values()), 3),
        "cache_hits": sum(1 for v in (record.get("cache_hits") or {}).values() if v),
        "analysis_model": (record.get("models") or {}).get("analysis"),
        "image_model": (record.get("models") or {}).get("image"),
        "prompt_version": (record.get("models") or {}).get("prompt_version"),
        "cost_usd": float(cost["total"]),
        "cost_transcript_usd": float(cost["stages"].get("transcript", 0)),
        "cost_mood_usd": float(cost["stages"].get("mood", 0)),
        "cost_image_usd": float(cost["stages"].get("mood_image", 0)),
        "saved_usd": float(cost["saved"]),
    }


def to_parquet(records: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([to_row(r) for r in records], schema=schema())
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def read_parquet(data: bytes) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def check_schema(data: bytes) -> list[str]:
    """Differences between a written file and the declared schema (empty when equal)."""
    found = read_parquet(data).schema
    expected = schema()
    problems = []
    for f in expected:
        if f.name not in found.names:
            problems.append(f"missing column {f.name}")
        elif not found.field(f.name).type.equals(f.type):
            problems.append(f"{f.name}: {found.field(f.name).type} != {f.type}")
    problems += [f"unexpected column {n}" for n in found.names if n not in expected.names]
    return problems

"""The daily mood report: aggregates of a day's table and a chart of emotions."""

from __future__ import annotations

import io
from typing import Any

from vomage_dagster.domain.mood import EMOTIONS

BAR_COLOURS = {
    "joy": (244, 180, 60), "sadness": (80, 110, 160), "anger": (190, 40, 45),
    "fear": (100, 70, 150), "surprise": (225, 70, 180), "disgust": (120, 135, 50),
    "neutral": (170, 170, 165),
}


def aggregates(frame: Any) -> dict:
    """Per emotion, per local hour and per language, plus the day's totals."""
    if frame.empty:
        return {"records": 0, "by_emotion": {}, "by_hour": {}, "by_language": {}}
    by_emotion = (frame.groupby("primary_emotion")
                  .agg(records=("recording_id", "count"), mean_valence=("valence", "mean"),
                       mean_intensity=("intensity", "mean"))
                  .round(3))
    return {
        "records": int(len(frame)),
        "users": int(frame["user_id"].nunique()),
        "by_emotion": {k: {c: (int(v) if c == "records" else float(v)) for c, v in row.items()}
                       for k, row in by_emotion.to_dict("index").items()},
        "by_hour": {int(k): int(v) for k, v in frame.groupby("local_hour")["recording_id"].count().items()},
        "by_language": {str(k): int(v) for k, v in frame.groupby("language")["recording_id"].count().items()},
        "mean_valence": round(float(frame["valence"].mean()), 3),
        "seconds_total_p50": round(float(frame["seconds_total"].median()), 3),
        "seconds_total_p95": round(float(frame["seconds_total"].quantile(0.95)), 3),
        "cost": cost_summary(frame),
    }


COST_COLUMNS = {"transcript": "cost_transcript_usd", "mood": "cost_mood_usd", "mood_image": "cost_image_usd"}


def cost_summary(frame: Any) -> dict:
    """The day's cost: total, per recording p50/p95, each stage's share, and what the cache saved."""
    if frame.empty:
        return {"total_usd": 0.0, "per_recording_p50_usd": 0.0, "per_recording_p95_usd": 0.0,
                "share": {}, "saved_usd": 0.0}
    total = float(frame["cost_usd"].sum())
    return {
        "total_usd": round(total, 6),
        "per_recording_p50_usd": round(float(frame["cost_usd"].median()), 6),
        "per_recording_p95_usd": round(float(frame["cost_usd"].quantile(0.95)), 6),
        "share": {stage: round(float(frame[col].sum()) / total, 4) if total else 0.0
                  for stage, col in COST_COLUMNS.items()},
        "saved_usd": round(float(frame["saved_usd"].sum()), 6),
    }


def chart(agg: dict, title: str, width: int = 720, height: int = 360) -> bytes:
    """A bar chart of records per emotion, as PNG."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (250, 250, 248))
    draw = ImageDraw.Draw(img)
    draw.text((16, 10), title, fill=(30, 30, 30))
    counts = [agg.get("by_emotion", {}).get(e, {}).get("records", 0) for e in EMOTIONS]
    top = max(counts) or 1
    left, bottom, bar_w = 40, height - 40, (width - 60) // len(EMOTIONS)
    for i, (emotion, n) in enumerate(zip(EMOTIONS, counts, strict=True)):
        x = left + i * bar_w
        h = int((height - 100) * n / top)
        draw.rectangle((x + 8, bottom - h, x + bar_w - 8, bottom), fill=BAR_COLOURS[emotion])
        draw.text((x + 8, bottom + 6), emotion, fill=(40, 40, 40))
        draw.text((x + 8, bottom - h - 14), str(n), fill=(40, 40, 40))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()

"""Simulated models for capacity runs: answers without the local models' CPU.

On AWS the mood and the image are computed on Bedrock's machines, not the platform's.
A capacity benchmark on this machine must therefore not spend its cores on the local
stand-ins of those models. With `VOMAGE_SIMULATED_MODELS=1` the local model server
answers

- a mood call from cheap deterministic rules (cue words per emotion, the same keyword
  and summary rules as the offline model), in the same `record_mood` shape, so the same
  validation applies;
- an image call with a full-size PNG painted once per emotion and kept (the platform
  still receives, stores and thumbnails a full-size image, as it would from Bedrock);

each after the latency profile's figure, as the real stand-ins are held to it. This is a
SIMULATION of the models' timing and output shape, not of their judgement: a capacity
figure taken with it says what the platform's own processes sustain, nothing about the
quality of moods or pictures. It is local only and off by default.
"""

from __future__ import annotations

import os
import threading

from vomage_dagster.domain.mood import EMOTIONS

ENV = "VOMAGE_SIMULATED_MODELS"

# A few cue words per emotion, English, Mandarin and Japanese; first match wins by count.
CUES: dict[str, tuple[str, ...]] = {
    "joy": ("happy", "great", "love", "wonderful", "excited", "开心", "高兴", "嬉しい", "最高"),
    "sadness": ("sad", "miss", "lonely", "cry", "难过", "孤独", "悲しい", "寂しい"),
    "anger": ("angry", "furious", "hate", "unfair", "annoyed", "生气", "腹が立つ", "むかつく"),
    "fear": ("scared", "afraid", "worried", "nervous", "anxious", "害怕", "担心", "怖い", "不安"),
    "surprise": ("wow", "surprise", "unbelievable", "unexpected", "没想到", "意外", "びっくり"),
    "disgust": ("disgusting", "gross", "nasty", "awful", "恶心", "気持ち悪い", "うんざり"),
}

def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def analyze(text: str, language: str) -> dict:
    """The `record_mood` tool input for a transcript, from cue words (microseconds of CPU)."""
    from vomage_dagster.local.models.mood_model import CIRCUMPLEX, SUMMARY_TEMPLATES, keywords

    lowered = text.lower()
    counts = {e: sum(lowered.count(c) for c in cues) for e, cues in CUES.items()}
    primary = max(counts, key=lambda e: counts[e]) if any(counts.values()) else "neutral"
    confidence = 0.9 if primary != "neutral" else 0.6
    intensity = 0.15 if primary == "neutral" else min(1.0, 0.5 + 0.1 * (text.count("!") + text.count("！")))
    words = keywords(text, language)
    strength = "mild" if intensity < 0.35 else "clear" if intensity < 0.7 else "strong"
    template = SUMMARY_TEMPLATES.get(language.split("-")[0].lower(), SUMMARY_TEMPLATES["en"])
    valence, arousal = CIRCUMPLEX[primary]
    second = next((e for e in EMOTIONS if e != primary), "neutral")
    return {
        "primary_emotion": primary,
        "confidence": confidence,
        "secondary_emotions": [{"emotion": second, "score": round(1 - confidence, 4)}],
        "intensity": round(intensity, 4),
        "valence": valence,
        "arousal": arousal,
        "keywords": words,
        "summary": template.format(strength=strength, emotion=primary, topics=", ".join(words[:3]) or "the day"),
    }


_painted: dict[tuple[str, int], bytes] = {}
_lock = threading.Lock()


def image(prompt: str, size: int) -> bytes:
    """A full-size PNG for the prompt's emotion, painted on first use and then reused."""
    from vomage_dagster.local.models.painter import _find, paint

    key = (_find(prompt, EMOTIONS, "neutral"), size)
    with _lock:
        if key not in _painted:
            _painted[key] = paint(f"Abstract painting of {key[0]}", size, 0)
        return _painted[key]

"""The mood an analysis must return, and the check that holds any model to it.

Whatever produced the analysis (Claude on Bedrock, the local model), its output is
untrusted until `validate_mood` accepts it: the emotion must be one of the app's seven,
numbers must be in range, strings short. This is what keeps a transcript that says
"ignore your instructions" from reaching anything downstream.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from vomage_dagster.domain.errors import INVALID_ANALYSIS, ProcessingError

EMOTIONS = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral")
MAX_KEYWORDS = 8
MAX_KEYWORD_CHARS = 32
MAX_SUMMARY_CHARS = 240

# Tool-use input schema Claude is forced to fill (JSON Schema).
MOOD_TOOL_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "primary_emotion": {"type": "string", "enum": list(EMOTIONS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "secondary_emotions": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "emotion": {"type": "string", "enum": list(EMOTIONS)},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["emotion", "score"],
            },
        },
        "intensity": {"type": "number", "minimum": 0, "maximum": 1},
        "valence": {"type": "number", "minimum": -1, "maximum": 1},
        "arousal": {"type": "number", "minimum": 0, "maximum": 1},
        "keywords": {
            "type": "array",
            "maxItems": MAX_KEYWORDS,
            "items": {"type": "string", "maxLength": MAX_KEYWORD_CHARS},
        },
        "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
    },
    "required": [
        "primary_emotion",
        "confidence",
        "intensity",
        "valence",
        "arousal",
        "keywords",
        "summary",
    ],
}


@dataclass(frozen=True)
class SecondaryEmotion:
    emotion: str
    score: float


@dataclass(frozen=True)
class Mood:
    primary_emotion: str
    confidence: float
    intensity: float
    valence: float
    arousal: float
    keywords: tuple[str, ...]
    summary: str
    secondary_emotions: tuple[SecondaryEmotion, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["keywords"] = list(self.keywords)
        d["secondary_emotions"] = [asdict(s) for s in self.secondary_emotions]
        return d


def _number(raw: dict, name: str, lo: float, hi: float) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProcessingError(INVALID_ANALYSIS, f"{name} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ProcessingError(INVALID_ANALYSIS, f"{name}={value} is outside [{lo}, {hi}]")
    return round(float(value), 4)


def _emotion(value: object, name: str) -> str:
    if value not in EMOTIONS:
        raise ProcessingError(INVALID_ANALYSIS, f"{name} {value!r} is not one of {EMOTIONS}")
    return str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f<>{}\[\]`]")


def clean_text(value: str, limit: int) -> str:
    """Strip control and markup characters and bound the length."""
    return _CONTROL.sub(" ", value).strip()[:limit]


def validate_mood(raw: object) -> Mood:
    """Accept a model's tool output only if it matches the schema; raise otherwise."""
    if not isinstance(raw, dict):
        raise ProcessingError(INVALID_ANALYSIS, f"analysis must be an object, got {type(raw)}")
    keywords = raw.get("keywords")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ProcessingError(INVALID_ANALYSIS, "keywords must be a list of strings")
    summary = raw.get("summary")
    if not isinstance(summary, str):
        raise ProcessingError(INVALID_ANALYSIS, "summary must be a string")
    secondary_raw = raw.get("secondary_emotions") or []
    if not isinstance(secondary_raw, list):
        raise ProcessingError(INVALID_ANALYSIS, "secondary_emotions must be a list")
    secondary = []
    for item in secondary_raw[:3]:
        if not isinstance(item, dict):
            raise ProcessingError(INVALID_ANALYSIS, "a secondary emotion must be an object")
        secondary.append(
            SecondaryEmotion(
                _emotion(item.get("emotion"), "secondary emotion"),
                _number(item, "score", 0, 1),
            )
        )
    cleaned = [clean_text(k, MAX_KEYWORD_CHARS) for k in keywords[:MAX_KEYWORDS]]
    return Mood(
        primary_emotion=_emotion(raw.get("primary_emotion"), "primary_emotion"),
        confidence=_number(raw, "confidence", 0, 1),
        intensity=_number(raw, "intensity", 0, 1),
        valence=_number(raw, "valence", -1, 1),
        arousal=_number(raw, "arousal", 0, 1),
        keywords=tuple(k for k in cleaned if k),
        summary=clean_text(summary, MAX_SUMMARY_CHARS),
        secondary_emotions=tuple(secondary),
    )


def mood_from_dict(d: dict) -> Mood:
    """Rebuild a Mood from its stored form (already validated when stored)."""
    return validate_mood(d)

"""The quality checks each recording's outputs get, as plain functions (the Dagster asset
checks in `assets/recording.py` report them per partition).

A check that fails is a warning, not an error: the recording was processed, and the
check says its output deserves a look (a low-confidence transcript, an image not square).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.mood import mood_from_dict
from vomage_dagster.domain.streamed import MAX_CHARS_PER_S, script_ok
from vomage_dagster.domain.transcript import SHORT_CODES

MIN_CONFIDENCE = 0.5
MIN_IMAGE_SIDE = 512


@dataclass(frozen=True)
class Checked:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def transcript_check(out: dict, duration_s: float) -> Checked:
    """Confident, in one of the app's languages, written in its script, a plausible length."""
    language, text, confidence = out.get("language", ""), out.get("text", ""), float(out.get("confidence", 0))
    problems = []
    if language not in SHORT_CODES:
        problems.append(f"language {language!r} is not one the app uses")
    elif not script_ok(language, text):
        problems.append(f"not written in {language}'s script")
    elif len(text) > MAX_CHARS_PER_S[language.split("-")[0]] * max(duration_s, 1.0):
        problems.append("implausibly long for the audio")
    if confidence < MIN_CONFIDENCE:
        problems.append(f"confidence {confidence:.2f} < {MIN_CONFIDENCE}")
    rate = round(len(text) / max(duration_s, 1.0), 1)
    return Checked(not problems, "; ".join(problems) or "confident and plausible",
                   {"confidence": confidence, "language": language, "chars_per_s": rate,
                    "source": out.get("source", "batch")})


def mood_check(out: dict) -> Checked:
    """The stored mood still reads as the schema the app takes."""
    try:
        mood = mood_from_dict(out)
    except (ProcessingError, KeyError, TypeError, ValueError) as exc:
        return Checked(False, f"mood does not match the schema: {exc}")
    return Checked(True, "matches the schema", {"primary_emotion": mood.primary_emotion})


def image_check(out: dict) -> Checked:
    """A square PNG of at least 512 px (the models answer ≈ 1 MP)."""
    width, height = int(out.get("width", 0)), int(out.get("height", 0))
    png = str(out.get("image_key", "")).endswith(".png")
    passed = png and width == height and width >= MIN_IMAGE_SIDE
    return Checked(passed, "a square PNG" if passed else f"{width}×{height}, png={png}",
                   {"size": f"{width}×{height}", "format": "png" if png else "other"})


CHECKS = {"transcript": ("plausible_transcript", "Confidence ≥ 0.5, one of the app's languages, its script, "
                         "a plausible length for the audio."),
          "mood": ("mood_schema", "The mood matches the schema the app takes."),
          "mood_image": ("square_png", "The image is a square PNG of at least 512 px.")}


def check(stage: str, out: dict, inputs: dict) -> Checked:
    if stage == "transcript":
        return transcript_check(out, float(inputs["raw_recording"].get("duration_s", 0)))
    if stage == "mood":
        return mood_check(out)
    return image_check(out)

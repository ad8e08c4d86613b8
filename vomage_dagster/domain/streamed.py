"""A transcript the app streamed while the user spoke, sent beside the upload.

The app streams the audio to Transcribe streaming while recording, so the final transcript
exists a moment after the last word. It then uploads the audio (object metadata
`transcript: streaming`, a promise that a sidecar follows) and puts the sidecar at
`transcripts/<user>/<recording_id>.json`:

    {"version": 1, "recording_id": "...", "language_code": "en-US",
     "transcript": "...", "audio_seconds": 6.9, "session_id": "...",
     "results": [<Transcribe streaming's final results>]}

The sidecar is user input. `validate` accepts it only if it is the right shape and size,
names this recording, is in one of the app's languages (and the upload's hint, if any),
is written in that language's script, covers about as much audio as was uploaded, and
has a plausible amount of text for that duration. Anything else is refused with a reason
and the recording falls back to the Transcribe batch job: a wrong transcript is never
trusted, and a bad sidecar never fails a recording that batch could transcribe.
"""

from __future__ import annotations

import json
import math
import unicodedata

from vomage_dagster.domain.transcript import SHORT_CODES, Segment, Transcript, join_text

PREFIX = "transcripts/"
VERSION = 1
MAX_BYTES = 256 * 1024  # a 300 s recording's results with every word's confidence
# Speech rarely exceeds ~25 characters a second in Latin script, ~10 in CJK; twice
# that is absurd. The duration may differ by the app's last frame and encoder padding.
MAX_CHARS_PER_S = {"en": 40.0, "zh": 16.0, "ja": 20.0}
DURATION_SLACK_S = 1.5
DURATION_SLACK_SHARE = 0.15
LANGUAGES = tuple(SHORT_CODES)  # en-US, zh-CN, ja-JP


class Rejected(ValueError):
    """Why a sidecar was not adopted (the recording falls back to the batch job)."""


def sidecar_key(user_id: str, recording_id: str) -> str:
    return f"{PREFIX}{user_id}/{recording_id}.json"


def build(recording_id: str, language: str, results: list[dict], audio_seconds: float,
          session_id: str = "") -> dict:
    """The sidecar for a stream's final results (what the app uploads)."""
    return {"version": VERSION, "recording_id": recording_id, "language_code": language,
            "transcript": results_text(language, results), "audio_seconds": round(audio_seconds, 3),
            "session_id": session_id, "results": results}


def results_text(language: str, results: list[dict]) -> str:
    """The text of Transcribe streaming's final results."""
    return join_text(language, [r["Alternatives"][0]["Transcript"] for r in results if r.get("Alternatives")])


def script_ok(language: str, text: str) -> bool:
    """Is the text written in the language's script (letters only; digits and marks are neutral)?"""
    letters = [c for c in text if unicodedata.category(c).startswith("L")]
    if not letters:
        return False
    names = [unicodedata.name(c, "") for c in letters]
    cjk = sum(1 for n in names if n.startswith(("CJK", "HIRAGANA", "KATAKANA")))
    kana = sum(1 for n in names if n.startswith(("HIRAGANA", "KATAKANA")))
    latin = sum(1 for n in names if n.startswith("LATIN"))
    short = language.split("-")[0]
    if short == "en":
        return latin / len(letters) >= 0.9
    if short == "zh":
        return cjk / len(letters) >= 0.8 and kana / len(letters) < 0.05
    return cjk / len(letters) >= 0.8 and kana > 0  # Japanese speech is never written without kana


def validate(raw: bytes, recording_id: str, duration_s: float | None, language_hint: str | None) -> Transcript:
    """The sidecar as a Transcript, or Rejected with the reason. `duration_s` None: the
    audio is not decoded yet (the early mood), so the stream's own length stands in for
    it; the run checks the sidecar against the decoded audio before it is used."""
    if len(raw) > MAX_BYTES:
        raise Rejected(f"the sidecar is {len(raw)} bytes, over {MAX_BYTES}")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected("the sidecar is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise Rejected(f"the sidecar is not a version {VERSION} object")
    if doc.get("recording_id") != recording_id:
        raise Rejected("the sidecar names another recording")
    language, text = doc.get("language_code"), doc.get("transcript")
    if language not in LANGUAGES:
        raise Rejected(f"language {str(language)[:16]!r} is not one of {', '.join(LANGUAGES)}")
    if language_hint and language_hint != language:
        raise Rejected("the sidecar's language is not the upload's language")
    if not isinstance(text, str) or not text.strip():
        raise Rejected("the sidecar's transcript is empty")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise Rejected("the transcript holds control characters")
    seconds = doc.get("audio_seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
        raise Rejected("audio_seconds is not a number")
    if duration_s is None:
        duration_s = float(seconds)
    if abs(seconds - duration_s) > max(DURATION_SLACK_S, DURATION_SLACK_SHARE * duration_s):
        raise Rejected(f"the stream covered {seconds:.1f} s of audio, the upload is {duration_s:.1f} s")
    short = language.split("-")[0]
    chars = len(text.strip())
    if chars > MAX_CHARS_PER_S[short] * max(duration_s, 1.0):
        raise Rejected(f"{chars} characters is implausible for {duration_s:.1f} s of speech")
    if not script_ok(language, text):
        raise Rejected(f"the transcript is not written in {language}'s script")
    segments, confidences = [], []
    results = doc.get("results")
    if not isinstance(results, list):
        raise Rejected("results is not a list")
    try:
        for r in results:
            alt = r["Alternatives"][0]
            start, end = float(r["StartTime"]), float(r["EndTime"])
            if not 0 <= start <= end <= duration_s + DURATION_SLACK_S:
                raise Rejected("a result lies outside the audio")
            segments.append(Segment(start, end, str(alt["Transcript"]).strip()))
            confidences += [float(i["Confidence"]) for i in alt.get("Items", []) if "Confidence" in i]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, Rejected):
            raise
        raise Rejected(f"a result is malformed ({type(exc).__name__})") from exc
    confidence = sum(confidences) / len(confidences) if confidences else 0.0
    if not 0 <= confidence <= 1:
        raise Rejected("confidences must lie in [0, 1]")
    return Transcript(text=text.strip(), language=language, confidence=round(confidence, 4),
                      segments=tuple(segments))


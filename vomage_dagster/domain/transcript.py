"""Transcripts: the Transcribe output format, and our own record of it.

The local model server writes the same JSON that Amazon Transcribe writes to S3, so
`parse_transcribe_output` is the one parser for both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Whisper's ISO 639-1 codes ↔ the Transcribe codes the app uses.
TRANSCRIBE_CODES = {"en": "en-US", "zh": "zh-CN", "ja": "ja-JP"}
SHORT_CODES = {v: k for k, v in TRANSCRIBE_CODES.items()}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return d


def join_text(language: str | None, texts: list[str]) -> str:
    """Segments as one text: Chinese and Japanese are written without spaces between them."""
    short = (language or "").split("-")[0].lower()
    return ("" if short in ("zh", "ja") else " ").join(t.strip() for t in texts).strip()


def transcript_from_dict(d: dict) -> Transcript:
    return Transcript(
        text=d["text"],
        language=d["language"],
        confidence=float(d["confidence"]),
        segments=tuple(Segment(**s) for s in d.get("segments", [])),
    )


def to_transcribe_code(language: str | None) -> str | None:
    """'en', 'en-US', 'EN' → 'en-US'; None or unknown → None."""
    if not language:
        return None
    lang = language.strip()
    if lang in SHORT_CODES:
        return lang
    return TRANSCRIBE_CODES.get(lang.split("-")[0].lower())


def parse_transcribe_output(doc: dict) -> Transcript:
    """Read Amazon Transcribe's output JSON into a Transcript."""
    results = doc.get("results") or {}
    texts = [t.get("transcript", "") for t in results.get("transcripts", [])]
    text = " ".join(t.strip() for t in texts if t.strip())
    language = results.get("language_code") or doc.get("language_code") or ""
    scores = {
        li.get("code"): float(li.get("score", 0)) for li in results.get("language_identification", [])
    }
    segments = []
    for seg in results.get("audio_segments", []):
        segments.append(
            Segment(float(seg["start_time"]), float(seg["end_time"]), seg["transcript"].strip())
        )
    confidences = [
        float(alt["confidence"])
        for item in results.get("items", [])
        if item.get("type") == "pronunciation"
        for alt in item.get("alternatives", [])[:1]
        if alt.get("confidence") not in (None, "")
    ]
    if confidences:
        confidence = sum(confidences) / len(confidences)
    else:
        confidence = scores.get(language, 0.0)
    return Transcript(text=text, language=language, confidence=round(confidence, 4),
                      segments=tuple(segments))

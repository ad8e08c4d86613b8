"""Why a recording failed, in the terms the app shows the user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProcessingError(Exception):
    """A failure with an error code the app understands.

    `retryable` says whether running the same recording again could succeed: bad input
    never can, a throttled or unreachable backend can.
    """

    code: str
    message: str
    retryable: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


# Bad input: final, never retried.
UNDECODABLE = "undecodable"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
TOO_LARGE = "too_large"
NO_SPEECH = "no_speech"
# An upload whose recording id belongs to another upload (another user's, or another file).
RECORDING_ID_TAKEN = "recording_id_taken"
# Backends.
TRANSCRIPTION_FAILED = "transcription_failed"
INVALID_ANALYSIS = "invalid_analysis"
IMAGE_FAILED = "image_failed"
# A configured model that is unknown, retired or not granted: final until settings change.
MODEL_UNAVAILABLE = "model_unavailable"
# The image model's content filter refused the prompt: the same prompt is refused again.
CONTENT_FILTERED = "content_filtered"
# The mood model declined the transcript (Claude's safety classifier, `stop_reason: refusal`):
# the same transcript is declined again, so it is final.
ANALYSIS_REFUSED = "analysis_refused"
INTERNAL = "internal_error"

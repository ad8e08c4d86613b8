"""The image styles a user may choose: the product plan's five presets.

The app sends the chosen one with the upload (`x-amz-meta-style`, `style` in the live
view's upload request); without one, the mood picks it. One list, so the page, the API's
refusal and the image prompt cannot disagree.
"""

from __future__ import annotations

STYLES = ("photographic", "digital-art", "cinematic", "anime", "fantasy-art")


class UnknownStyle(ValueError):
    def __init__(self, given: str):
        super().__init__(f"style {given!r} is not one of {', '.join(STYLES)}")


def parse_style(given: str | None) -> str | None:
    """The style named, None when none is (the mood then chooses); UnknownStyle otherwise."""
    if given is None or not str(given).strip():
        return None
    style = str(given).strip().lower()
    if style not in STYLES:
        raise UnknownStyle(str(given)[:40])
    return style


# Without a choice, the mood picks: what suits each emotion's picture best.
DEFAULT_FOR_EMOTION = {
    "joy": "anime", "surprise": "digital-art", "sadness": "cinematic", "fear": "fantasy-art",
    "anger": "cinematic", "disgust": "photographic", "neutral": "photographic",
}
# How each style opens the image prompt (and how the prompt is read back: `style_in`).
PROMPT_PHRASES = {
    "photographic": "photographic style, natural light, shallow depth of field",
    "digital-art": "digital art style, crisp shapes, vivid gradients",
    "cinematic": "cinematic style, dramatic widescreen lighting, film grain",
    "anime": "anime style, cel shading, clean outlines",
    "fantasy-art": "fantasy art style, luminous and dreamlike",
}


def resolve(chosen: str | None, emotion: str) -> str:
    """The style an image is painted in: the user's choice, else the mood's."""
    return chosen if chosen in STYLES else DEFAULT_FOR_EMOTION.get(emotion, "digital-art")


def style_in(prompt: str) -> str | None:
    """The style a prompt built by `prompts.image_prompt` was built with."""
    return next((s for s, phrase in PROMPT_PHRASES.items() if prompt.startswith(phrase)), None)

"""Procedural mood art: the local stand-in for the image model (Stable Image Core).

It reads the same prompt the image model would get (built by `domain.prompts.image_prompt`),
picks the palette of the emotion named in it, adds the sun or moon for the time of day
and rain, snow, cloud or fog for the weather, and scatters soft shapes seeded by the
prompt's hash: the same prompt always paints the same picture.
"""

from __future__ import annotations

import io

import numpy as np

from vomage_dagster.domain.hashing import sha256_text
from vomage_dagster.domain.mood import EMOTIONS

PALETTE_RGB = {
    "joy": ((255, 196, 87), (255, 120, 90), (255, 236, 170)),
    "sadness": ((60, 84, 130), (110, 125, 150), (170, 185, 205)),
    "anger": ((130, 16, 24), (40, 36, 40), (220, 60, 40)),
    "fear": ((45, 25, 80), (20, 80, 90), (120, 90, 160)),
    "surprise": ((230, 40, 170), (30, 220, 240), (255, 240, 120)),
    "disgust": ((110, 120, 40), (170, 130, 40), (80, 90, 50)),
    "neutral": ((225, 215, 195), (190, 190, 190), (245, 240, 230)),
}
TIMES = ("morning", "afternoon", "evening", "night")
WEATHERS = ("clear", "cloudy", "rain", "snow", "fog")


def _find(prompt: str, words: tuple[str, ...], default: str) -> str:
    lowered = prompt.lower()
    for w in words:
        if w in lowered:
            return w
    return default


def paint(prompt: str, size: int = 1024) -> bytes:
    """A PNG of `size`×`size` for the prompt."""
    from PIL import Image, ImageDraw, ImageFilter

    emotion = _find(prompt, EMOTIONS, "neutral")
    time_of_day = _find(prompt, TIMES, "afternoon")
    weather = _find(prompt, WEATHERS, "clear")
    rng = np.random.default_rng(int(sha256_text(prompt)[:16], 16))
    top, bottom, accent = (np.array(c, dtype=np.float32) for c in PALETTE_RGB[emotion])
    if time_of_day == "night":
        top, bottom = top * 0.35, bottom * 0.5
    elif time_of_day == "evening":
        top = top * 0.7 + np.array([60, 20, 40], dtype=np.float32)

    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    sky = (top * (1 - t) + bottom * t).repeat(size, axis=1)
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")

    shapes = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    for _ in range(18):
        r = int(rng.integers(size // 20, size // 5))
        x, y = rng.integers(0, size, 2)
        colour = tuple(int(c) for c in np.clip(accent + rng.normal(0, 30, 3), 0, 255))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour + (int(rng.integers(40, 110)),))
    shapes = shapes.filter(ImageFilter.GaussianBlur(size // 64))
    img.paste(shapes, (0, 0), shapes)

    draw = ImageDraw.Draw(img, "RGBA")
    cx, cy, r = int(size * 0.78), int(size * 0.2), size // 12
    if time_of_day == "night":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(235, 235, 210, 230))
        draw.ellipse((cx - r + r // 2, cy - r, cx + r + r // 2, cy + r), fill=tuple(int(c) for c in top) + (255,))
    elif weather in ("clear", "cloudy"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 240, 180, 220))
    if weather in ("cloudy", "rain", "snow"):
        for _ in range(5):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, size // 3))
            w, h = int(rng.integers(size // 6, size // 3)), int(rng.integers(size // 16, size // 9))
            draw.ellipse((x, y, x + w, y + h), fill=(230, 230, 235, 150))
    if weather == "rain":
        for _ in range(260):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, size))
            draw.line((x, y, x - 6, y + 26), fill=(200, 210, 235, 140), width=2)
    elif weather == "snow":
        for _ in range(320):
            x, y, s = int(rng.integers(0, size)), int(rng.integers(0, size)), int(rng.integers(2, 6))
            draw.ellipse((x, y, x + s, y + s), fill=(255, 255, 255, 210))
    elif weather == "fog":
        draw.rectangle((0, size // 2, size, size), fill=(235, 235, 235, 90))

    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=3)
    return out.getvalue()

"""Procedural mood art: the local stand-in for the image model (Stable Image Core).

It reads the same prompt and seed the image model would get (built by
`domain.prompts.image_prompt`, `domain.image_models`), picks the palette of the emotion
named in it, paints in the style the prompt opens with (`domain.styles`: soft and
blurred for photographic, hard facets for digital art, letterboxed with grain for
cinematic, flat cels with outlines for anime, glowing orbs for fantasy art), adds the sun
or moon for the time of day and rain, snow, cloud or fog for the weather, and places its
shapes from the seed: the same prompt and seed always paint the same picture, another
seed another picture, as a diffusion model does.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from vomage_dagster.domain.hashing import sha256_text
from vomage_dagster.domain.mood import EMOTIONS
from vomage_dagster.domain.styles import style_in

if TYPE_CHECKING:
    from PIL import Image

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
WEATHERS = ("clear", "cloudy", "rain", "snow", "fog", "storm")


def _find(prompt: str, words: tuple[str, ...], default: str) -> str:
    lowered = prompt.lower()
    for w in words:
        if w in lowered:
            return w
    return default


def _shapes(size: int, rng: np.random.Generator, accent: np.ndarray, style: str) -> Image.Image:
    """The seed's shapes, drawn the style's way, on a transparent layer."""
    from PIL import Image, ImageDraw, ImageFilter

    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(18):
        r = int(rng.integers(size // 20, size // 5))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(c) for c in np.clip(accent + rng.normal(0, 30, 3), 0, 255))
        if style == "digital-art":  # hard-edged facets
            points = [(x + int(r * np.cos(a)), y + int(r * np.sin(a)))
                      for a in np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))]
            draw.polygon(points, fill=colour + (int(rng.integers(120, 200)),))
        elif style == "anime":  # flat cels with outlines
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour + (230,), outline=(30, 30, 40, 255),
                         width=max(2, size // 170))
        elif style == "fantasy-art":  # glowing orbs
            for k in range(4, 0, -1):
                rr = r * k // 4
                draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=colour + (40 + 30 * (4 - k),))
        else:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour + (int(rng.integers(40, 110)),))
    blur = {"photographic": size // 24, "cinematic": size // 64, "fantasy-art": size // 48}.get(style, 0)
    return layer.filter(ImageFilter.GaussianBlur(blur)) if blur else layer


def _finish(img: Image.Image, rng: np.random.Generator, style: str) -> Image.Image:
    """The style's last touch over the whole picture."""
    from PIL import Image, ImageDraw

    size = img.size[0]
    if style == "cinematic":  # film grain, contrast, letterbox
        pixels = np.asarray(img, dtype=np.float32)
        pixels = (pixels - 128) * 1.25 + 128 + rng.normal(0, 9, pixels.shape[:2])[..., None]
        img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        bar = size // 8
        ImageDraw.Draw(img).rectangle((0, 0, size, bar), fill=(8, 8, 10))
        ImageDraw.Draw(img).rectangle((0, size - bar, size, size), fill=(8, 8, 10))
    elif style == "anime":  # flat colour bands
        img = img.quantize(colors=12, method=Image.Quantize.MEDIANCUT).convert("RGB")
    elif style == "photographic":  # a lens's vignette
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        shade = 1.0 - 0.55 * (xx * xx + yy * yy)
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) * shade[..., None], 0, 255)
                              .astype(np.uint8), "RGB")
    elif style == "fantasy-art":  # sparkles
        draw = ImageDraw.Draw(img, "RGBA")
        for _ in range(90):
            x, y, s = int(rng.integers(0, size)), int(rng.integers(0, size)), int(rng.integers(1, 4))
            draw.ellipse((x - s, y - s, x + s, y + s), fill=(255, 250, 220, 220))
    return img


def paint(prompt: str, size: int = 1024, seed: int | None = None) -> bytes:
    """A PNG of `size`×`size` for the prompt and seed."""
    from PIL import Image, ImageDraw

    emotion = _find(prompt, EMOTIONS, "neutral")
    time_of_day = _find(prompt, TIMES, "afternoon")
    weather = _find(prompt, tuple(f"{w} weather" for w in WEATHERS), "clear weather").split()[0]
    style = style_in(prompt) or "digital-art"
    rng = np.random.default_rng(int(sha256_text(prompt, str(seed))[:16], 16))
    top, bottom, accent = (np.array(c, dtype=np.float32) for c in PALETTE_RGB[emotion])
    if time_of_day == "night":
        top, bottom = top * 0.35, bottom * 0.5
    elif time_of_day == "evening":
        top = top * 0.7 + np.array([60, 20, 40], dtype=np.float32)
    if style == "fantasy-art":
        top = top * 0.6 + np.array([50, 20, 90], dtype=np.float32)

    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    sky = (top * (1 - t) + bottom * t).repeat(size, axis=1)
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    shapes = _shapes(size, rng, accent, style)
    img.paste(shapes, (0, 0), shapes)

    draw = ImageDraw.Draw(img, "RGBA")
    cx, cy, r = int(size * 0.78), int(size * 0.2), size // 12
    if time_of_day == "night":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(235, 235, 210, 230))
        draw.ellipse((cx - r + r // 2, cy - r, cx + r + r // 2, cy + r), fill=tuple(int(c) for c in top) + (255,))
    elif weather in ("clear", "cloudy"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 240, 180, 220))
    if weather in ("cloudy", "rain", "snow", "storm"):
        for _ in range(5):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, size // 3))
            w, h = int(rng.integers(size // 6, size // 3)), int(rng.integers(size // 16, size // 9))
            draw.ellipse((x, y, x + w, y + h), fill=(230, 230, 235, 150))
    if weather in ("rain", "storm"):
        for _ in range(260):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, size))
            draw.line((x, y, x - 6, y + 26), fill=(200, 210, 235, 140), width=2)
    elif weather == "snow":
        for _ in range(320):
            x, y, s = int(rng.integers(0, size)), int(rng.integers(0, size)), int(rng.integers(2, 6))
            draw.ellipse((x, y, x + s, y + s), fill=(255, 255, 255, 210))
    elif weather == "fog":
        draw.rectangle((0, size // 2, size, size), fill=(235, 235, 235, 90))

    if weather == "storm":
        draw.rectangle((0, 0, size, size), fill=(20, 20, 40, 70))
    img = _finish(img, rng, style)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=3)
    return out.getvalue()

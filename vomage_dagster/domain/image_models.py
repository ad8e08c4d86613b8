"""Image model adapters: the request body per model family, the image out of the answer,
and the one output the record promises (a 1024×1024 PNG), whatever the model returned.

- Stability (Stable Image Core, the default): `{"prompt", "negative_prompt",
  "aspect_ratio", "seed", "output_format"}` → `{"seeds", "finish_reasons", "images"}`;
  about one megapixel, no width or height to ask for.
- Nova Canvas (end of life 2026-09-30; kept for accounts that still have it):
  TEXT_IMAGE with `imageGenerationConfig` → `{"images", "error"}`.

A content filter's refusal is final for that prompt: `content_filtered`, not retryable.
"""

from __future__ import annotations

import base64
import io

from vomage_dagster.domain import models
from vomage_dagster.domain.errors import CONTENT_FILTERED, IMAGE_FAILED, ProcessingError
from vomage_dagster.domain.hashing import sha256_text

IMAGE_SIZE = 1024
NEGATIVE_TEXT = "text, letters, watermark, people, faces, logos"
# Stability seeds are 0..4294967294, Nova Canvas seeds 0..858993459; one seed fits both.
MAX_SEED = 858_993_459


def image_seed(*parts: str) -> int:
    """A seed from `parts`: the same parts give the same seed, so the same picture."""
    return int(sha256_text(*parts)[:8], 16) % (MAX_SEED + 1)


def recording_seed(recording_id: str) -> int:
    """Each recording's own seed: two recordings with the same prompt get two pictures;
    the same recording painted again gets its own picture again."""
    return image_seed("recording", recording_id)


def stability_request(prompt: str, seed: int | None = None) -> dict:
    return {"prompt": prompt[:10_000], "negative_prompt": NEGATIVE_TEXT, "aspect_ratio": "1:1",
            "seed": image_seed(prompt) if seed is None else seed, "output_format": "png"}


def nova_canvas_request(prompt: str, size: int = IMAGE_SIZE, seed: int | None = None) -> dict:
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": prompt[:1024], "negativeText": NEGATIVE_TEXT},
        "imageGenerationConfig": {"numberOfImages": 1, "width": size, "height": size,
                                  "cfgScale": 8.0, "seed": image_seed(prompt) if seed is None else seed},
    }


def request_body(model_id: str, prompt: str, seed: int | None = None) -> dict:
    """The InvokeModel body for `prompt` in the shape of the model's family; without a
    `seed`, one derived from the prompt (a picture for the prompt, not for a recording)."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be 0–{MAX_SEED}")
    kind = models.family(model_id)
    if kind == models.STABILITY:
        return stability_request(prompt, seed)
    if kind == models.NOVA_CANVAS:
        return nova_canvas_request(prompt, seed=seed)
    raise ValueError(f"{model_id} is not an image model")


def _first_image(images: object) -> bytes:
    if not isinstance(images, list) or not images or not isinstance(images[0], str):
        raise ProcessingError(IMAGE_FAILED, "the image model returned no image", retryable=True)
    try:
        return base64.b64decode(images[0], validate=True)
    except ValueError as exc:
        raise ProcessingError(IMAGE_FAILED, "the image model returned an image that is not base64",
                              retryable=True) from exc


def image_from_response(model_id: str, body: dict) -> bytes:
    """The image bytes in an answer of the model's family; raise on a refusal or an empty answer."""
    if models.family(model_id) == models.STABILITY:
        reasons = body.get("finish_reasons") or []
        refused = [r for r in reasons if r]
        if refused:
            raise ProcessingError(CONTENT_FILTERED,
                                  f"the image model's content filter refused the prompt ({refused[0]})")
        return _first_image(body.get("images"))
    error = body.get("error")
    if error:
        if "content filter" in str(error).lower() or "blocked" in str(error).lower():
            raise ProcessingError(CONTENT_FILTERED, f"the image model's content filter refused the prompt "
                                                    f"({str(error)[:200]})")
        raise ProcessingError(IMAGE_FAILED, f"image model error: {str(error)[:200]}", retryable=True)
    return _first_image(body.get("images"))


def normalise(data: bytes, size: int = IMAGE_SIZE) -> bytes:
    """`data` (PNG, JPEG or WebP of any size) as the size×size RGB PNG the record promises.

    A non-square answer is centre-cropped to a square first, so nothing is stretched.
    Bytes that are not an image are a failed (retryable) image stage.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "PNG" and im.size == (size, size) and im.mode in ("RGB", "RGBA"):
                return data
            im = im.convert("RGB")
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            square = im.crop((left, top, left + side, top + side))
            if square.size != (size, size):
                square = square.resize((size, size), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError) as exc:
        raise ProcessingError(IMAGE_FAILED, "the image model returned bytes that are not an image",
                              retryable=True) from exc
    out = io.BytesIO()
    square.save(out, format="PNG")
    return out.getvalue()

"""What a recording costs on AWS, stage by stage, at list prices.

One table of prices, each with where and when it was read. Transcribe bills per second
with a 15 s minimum per request; the mood model by the tokens its answer's `usage`
reports; the image model per image. A cache hit costs nothing and records what it
saved (what the call would have cost). The weather/context stage calls no paid API.
"""

from __future__ import annotations

from dataclasses import dataclass

from vomage_dagster.domain import models

PRICES_SOURCE = "AWS list prices, us-east-1, on-demand, as read in 2026 (docs/sources.md)"
PRICES_DATE = "2026-11"

TRANSCRIBE_PER_SECOND = 0.024 / 60  # batch and streaming alike, standard tier
TRANSCRIBE_MIN_SECONDS = 15.0


@dataclass(frozen=True)
class TokenPrice:
    input_per_mtok: float
    output_per_mtok: float


# By foundation model id (a profile id costs what its model costs).
TOKEN_PRICES: dict[str, TokenPrice] = {
    "anthropic.claude-haiku-4-5-20251001-v1:0": TokenPrice(1.00, 5.00),
    "anthropic.claude-haiku-5-5": TokenPrice(0.10, 0.50),  # its tokenizer counts ≈ 30 % more tokens
    "amazon.nova-micro-v1:0": TokenPrice(0.035, 0.14),
    "amazon.nova-lite-v1:0": TokenPrice(0.06, 0.24),
    "amazon.nova-2-lite-v1:0": TokenPrice(0.30, 2.50),
    "anthropic.claude-3-haiku-20240307-v1:0": TokenPrice(0.25, 1.25),  # end of life; old records
}
IMAGE_PRICES: dict[str, float] = {
    "stability.stable-image-core-v1:1": 0.04,
    "stability.stable-image-core-v1:0": 0.04,
    "amazon.nova-canvas-v1:0": 0.04,  # 1024×1024, standard quality
}
# Batch inference is billed at half the on-demand token price.
BATCH_DISCOUNT = 0.5
# A record written before usage was kept: a typical mood call (measured locally).
TYPICAL_USAGE = {"input_tokens": 600, "output_tokens": 150}

STAGES = ("transcript", "mood", "mood_image")


def transcribe_cost(duration_s: float) -> float:
    return TRANSCRIBE_PER_SECOND * max(float(duration_s), TRANSCRIBE_MIN_SECONDS)


def token_cost(model_id: str, usage: dict, batch: bool = False) -> float:
    price = TOKEN_PRICES.get(models.foundation_id(model_id))
    if price is None:
        return 0.0
    cost = (float(usage.get("input_tokens", 0)) * price.input_per_mtok
            + float(usage.get("output_tokens", 0)) * price.output_per_mtok) / 1e6
    return cost * (BATCH_DISCOUNT if batch else 1.0)


def image_cost(model_id: str) -> float:
    return IMAGE_PRICES.get(models.foundation_id(model_id), 0.0)


def recording_cost(duration_s: float, analysis_model: str, usage: dict | None, image_model: str,
                   cache_hits: dict[str, bool]) -> dict:
    """`cost_usd` of a published record: what was paid per stage and what the cache saved.

    `usage` is the mood call's tokens (or, on a cache hit, those of the call it replaced).
    """
    would = {
        "transcript": transcribe_cost(duration_s),
        "mood": token_cost(analysis_model, usage or TYPICAL_USAGE),
        "mood_image": image_cost(image_model),
    }
    paid = {s: 0.0 if cache_hits.get(s) else would[s] for s in STAGES}
    saved = {s: would[s] - paid[s] for s in STAGES}
    return {
        "total": round(sum(paid.values()), 6),
        "stages": {s: round(v, 6) for s, v in paid.items()},
        "saved": round(sum(saved.values()), 6),
        "saved_stages": {s: round(v, 6) for s, v in saved.items() if v},
        "prices": PRICES_DATE,
    }


def record_cost(record: dict) -> dict:
    """The record's `cost_usd`, or one computed from its fields for a record from before it existed."""
    found = record.get("cost_usd")
    if isinstance(found, dict) and "total" in found:
        return found
    model_names = record.get("models") or {}
    return recording_cost(float(record.get("duration_s", 0) or 0), model_names.get("analysis", ""),
                          record.get("usage") or None, model_names.get("image", ""),
                          record.get("cache_hits") or {})

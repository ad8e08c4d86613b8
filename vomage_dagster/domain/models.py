"""Which Bedrock models the platform calls, and what a model id says about itself.

A model id is either a foundation model (`anthropic.claude-haiku-4-5-20251001-v1:0`)
or a system-defined cross-region inference profile: the same id behind a geography
prefix (`us.`, `eu.`, `apac.`, `global.`…). Claude Haiku 4.5 is only served through a
profile; calling its bare id on demand fails on AWS. The family decides the request
shape of the calls that have no common API (batch inputs, images).
"""

from __future__ import annotations

from dataclasses import dataclass

# Geography prefixes of Bedrock's system-defined inference profiles.
PROFILE_PREFIXES = ("us", "eu", "apac", "global", "jp", "au", "ca", "us-gov")

ANTHROPIC = "anthropic"
NOVA_TEXT = "nova"
STABILITY = "stability"
NOVA_CANVAS = "nova-canvas"
TEXT_FAMILIES = (ANTHROPIC, NOVA_TEXT)
IMAGE_FAMILIES = (STABILITY, NOVA_CANVAS)

HAIKU_4_5 = "anthropic.claude-haiku-4-5-20251001-v1:0"
# Claude Haiku 5.5 (2026-10): a configured option, not the default. Its API refuses what the
# Haiku 4.5 request sets (see `adaptive_thinking`); $0.10 / $0.50 per M tokens.
HAIKU_5_5 = "anthropic.claude-haiku-5-5"

# Defaults (docs/sources.md): the successors of Claude 3 Haiku and Nova Canvas, both past
# end of life in 2026. Stability's image models are served in fewer regions than the
# text models; us-west-2 is where ListFoundationModels lists Stable Image Core.
DEFAULT_ANALYSIS_MODEL = HAIKU_4_5
DEFAULT_PROFILE_PREFIX = "us"
DEFAULT_IMAGE_MODEL = "stability.stable-image-core-v1:1"
DEFAULT_IMAGE_REGION = "us-west-2"


def split_profile(model_id: str) -> tuple[str | None, str]:
    """(profile prefix or None, foundation model id)."""
    head, _, rest = model_id.partition(".")
    if rest and head in PROFILE_PREFIXES and "." in rest:
        return head, rest
    return None, model_id


def is_profile(model_id: str) -> bool:
    return split_profile(model_id)[0] is not None


def foundation_id(model_id: str) -> str:
    """The foundation model behind a profile id (itself for a foundation model id)."""
    model_id = model_id.rsplit("foundation-model/", 1)[-1]
    return split_profile(model_id)[1]


def with_profile(model_id: str, prefix: str) -> str:
    """`model_id` invoked through the `prefix` profile ('' or a profile id: unchanged)."""
    if not prefix or is_profile(model_id):
        return model_id
    return f"{prefix}.{model_id}"


def family(model_id: str) -> str:
    """The request-shape family of a model id; ValueError for one the platform has no adapter for."""
    base = foundation_id(model_id)
    if base.startswith("anthropic.claude"):
        return ANTHROPIC
    if base.startswith("amazon.nova-canvas"):
        return NOVA_CANVAS
    if base.startswith("amazon.nova"):
        return NOVA_TEXT
    if base.startswith("stability."):
        return STABILITY
    raise ValueError(f"no request adapter for model {model_id!r} "
                     f"(supported: Claude and Nova text models, Stability and Nova Canvas images)")


# The first Claude generation whose API thinks adaptively unless told not to and refuses
# sampling parameters, assistant prefill and `budget_tokens` (Claude Haiku 5.5's rules).
ADAPTIVE_THINKING_FROM = (5,)


def adaptive_thinking(model_id: str) -> bool:
    """Whether the model is a Claude of the generation with Haiku 5.5's request rules.

    Those models think before answering unless the request turns thinking off, and refuse
    a non-default temperature/top_p/top_k: the mood request must turn thinking off (a short
    forced tool call gains nothing from it but latency) and leave temperature out, where
    Haiku 4.5's request sets it to 0. Decided from the id's version (`model_versions`), so
    a later Claude of the same line follows the same rules.
    """
    from vomage_dagster.domain.model_versions import lineage

    if family_or_none(model_id) != ANTHROPIC:
        return False
    return lineage(model_id).generation >= ADAPTIVE_THINKING_FROM


def family_or_none(model_id: str) -> str | None:
    try:
        return family(model_id)
    except ValueError:
        return None


@dataclass(frozen=True)
class ConfiguredModel:
    """A model the platform calls: what for, its id as invoked, and the region it is called in."""

    role: str  # "analysis" or "image"
    model_id: str
    region: str

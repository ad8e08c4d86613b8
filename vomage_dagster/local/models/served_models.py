"""The models the local model server serves, described as Bedrock's control plane does.

The local server answers only these ids, so a typo or a retired id in settings fails
locally as it fails on AWS. Claude Haiku 4.5 and 5.5 are both ACTIVE. Claude 3 Haiku is
absent on purpose: it reached end of life on 2026-09-10 and Bedrock no longer serves it.
Nova Canvas is served but LEGACY (end of life 2026-09-30) for the accounts that still have
it. `VOMAGE_LOCAL_LEGACY_MODELS=<id,…>` reports more models as LEGACY, so the lifecycle
check's failure path runs in tests.
"""

from __future__ import annotations

import datetime as dt
import os

from vomage_dagster.domain import models

TEXT, IMAGE = "TEXT", "IMAGE"
ACCOUNT = "000000000000"

# foundation model id → (name, provider, output modality, legacy/end-of-life dates or None)
FOUNDATION_MODELS: dict[str, tuple[str, str, str, tuple[str, str] | None]] = {
    "anthropic.claude-haiku-4-5-20251001-v1:0": ("Claude Haiku 4.5", "Anthropic", TEXT, None),
    # ACTIVE since 2026-10-07, "end of life no sooner than 2027-10-07": Bedrock states no
    # end-of-life time for an ACTIVE model, so none is given here either.
    "anthropic.claude-haiku-5-5": ("Claude Haiku 5.5", "Anthropic", TEXT, None),
    "amazon.nova-micro-v1:0": ("Nova Micro", "Amazon", TEXT, None),
    "amazon.nova-lite-v1:0": ("Nova Lite", "Amazon", TEXT, None),
    "amazon.nova-2-lite-v1:0": ("Nova 2 Lite", "Amazon", TEXT, None),
    "stability.stable-image-core-v1:1": ("Stable Image Core 1.1", "Stability AI", IMAGE, None),
    "amazon.nova-canvas-v1:0": ("Nova Canvas", "Amazon", IMAGE, ("2026-03-30", "2026-09-30")),
}
# When a model's life began (default: 2025-01-01, before anything here mattered).
START_OF_LIFE = {"anthropic.claude-haiku-4-5-20251001-v1:0": "2025-10-15",
                 "anthropic.claude-haiku-5-5": "2026-10-07"}
# Models reached on demand only through a profile (calling the bare id fails, as on AWS).
# Claude Haiku 5.5 is listed with profiles as Haiku 4.5 is; held to the same rule.
PROFILE_ONLY = {"anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-5-5",
                "amazon.nova-2-lite-v1:0"}
# profile prefix → the regions its profiles route to
PROFILE_REGIONS = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3"),
    "apac": ("ap-northeast-1", "ap-southeast-1", "ap-southeast-2"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "global": ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"),
}
# The profiles a model is offered through, where not every geography's (default: all but jp).
PROFILES_OF = {"anthropic.claude-haiku-5-5": ("us", "eu", "jp", "global")}
DEFAULT_PROFILES = ("us", "eu", "apac", "global")


def legacy_ids(environ: dict[str, str] | None = None) -> set[str]:
    raw = (os.environ if environ is None else environ).get("VOMAGE_LOCAL_LEGACY_MODELS", "")
    return {models.foundation_id(part.strip()) for part in raw.split(",") if part.strip()}


def _time(day: str) -> str:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).isoformat()


def foundation_model(model_id: str, region: str, legacy: set[str]) -> dict | None:
    """`modelDetails` of GetFoundationModel, or None for a model not served."""
    found = FOUNDATION_MODELS.get(model_id)
    if found is None:
        return None
    name, provider, modality, dates = found
    life: dict = {"status": "ACTIVE", "startOfLifeTime": _time(START_OF_LIFE.get(model_id, "2025-01-01"))}
    if dates or model_id in legacy:
        legacy_day, end_day = dates or ((dt.date.today() - dt.timedelta(days=1)).isoformat(),
                                        (dt.date.today() + dt.timedelta(days=180)).isoformat())
        life.update(status="LEGACY", legacyTime=_time(legacy_day), endOfLifeTime=_time(end_day))
    return {
        "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
        "modelId": model_id, "modelName": name, "providerName": provider,
        "inputModalities": ["TEXT"], "outputModalities": [modality],
        "responseStreamingSupported": modality == TEXT, "customizationsSupported": [],
        "inferenceTypesSupported": ["INFERENCE_PROFILE"] if model_id in PROFILE_ONLY else ["ON_DEMAND"],
        "modelLifecycle": life,
    }


def inference_profile(profile_id: str, region: str) -> dict | None:
    """GetInferenceProfile's answer, or None for a profile not offered."""
    prefix, base = models.split_profile(profile_id)
    if prefix not in PROFILE_REGIONS or base not in FOUNDATION_MODELS \
            or prefix not in PROFILES_OF.get(base, DEFAULT_PROFILES):
        return None
    if FOUNDATION_MODELS[base][2] != TEXT:
        return None  # image models here have no cross-region profile
    routes = PROFILE_REGIONS[prefix]
    if prefix != "global" and region not in routes:
        return None  # a geography's profile is offered only from its own regions
    now = _time("2025-10-15")
    return {
        "inferenceProfileName": f"{prefix.upper()} {FOUNDATION_MODELS[base][0]}",
        "inferenceProfileArn": f"arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{profile_id}",
        "inferenceProfileId": profile_id, "status": "ACTIVE", "type": "SYSTEM_DEFINED",
        "createdAt": now, "updatedAt": now,
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{base}"} for r in routes],
    }


def resolve(model_id: str, region: str, modality: str) -> str:
    """The foundation model behind an invocation's model id; ValueError/LookupError as Bedrock would refuse."""
    if models.is_profile(model_id):
        if inference_profile(model_id, region) is None:
            raise LookupError(f"The provided model identifier is invalid: {model_id}")
        base = models.foundation_id(model_id)
    else:
        base = model_id
        if base not in FOUNDATION_MODELS:
            raise LookupError("The provided model identifier is invalid.")
        if base in PROFILE_ONLY:
            raise LookupError(f"Invocation of model ID {base} with on-demand throughput isn't supported. "
                              "Retry your request with the ID or ARN of an inference profile that "
                              "contains this model.")
    if FOUNDATION_MODELS[base][2] != modality:
        raise ValueError(f"The model {model_id} does not support this operation")
    return base

"""Bedrock's control plane, asked whether each configured model is still served.

A profile id is looked up with `GetInferenceProfile` in the region it is called from;
each foundation model it routes to is then looked up with `GetFoundationModel` in that
model's own region (a `us.` profile routes to several). A bare model id is looked up
with `GetFoundationModel` directly. `ListFoundationModels` in the model's region names a
newer ACTIVE model of its line, if there is one. Verdicts are in `domain.model_verdicts`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.domain import model_verdicts as lifecycle
from vomage_dagster.domain import model_versions, models
from vomage_dagster.resources.aws import client


def _reason(exc: Exception) -> str | None:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message', '')}"[:300]
    return None


class ModelCatalog(ConfigurableResource):
    endpoint_url: str | None = None

    def bedrock(self, region: str) -> Any:
        return client("bedrock", region, self.endpoint_url)

    def foundation_model(self, role: str, model_id: str, region: str) -> lifecycle.ModelVerdict:
        base = models.foundation_id(model_id)
        try:
            details = self.bedrock(region).get_foundation_model(modelIdentifier=base)["modelDetails"]
        except Exception as exc:
            reason = _reason(exc)
            if reason is None:
                raise
            return lifecycle.unavailable(role, base, region, reason)
        return lifecycle.from_foundation_model(role, base, region, details)

    def verdict(self, model: models.ConfiguredModel) -> lifecycle.ModelVerdict:
        """The lifecycle verdict of one configured model, with its successor if one is listed."""
        found = self._verdict(model)
        return dataclasses.replace(found, successor=self.successor(model.model_id, model.region))

    def successor(self, model_id: str, region: str) -> str | None:
        """The newest ACTIVE model of `model_id`'s line that `ListFoundationModels` lists in
        `region` and that is newer than it (`model_versions`); None when there is none, or
        when the listing is refused (advice must not fail the check)."""
        try:
            listed = self.list_models(region)
        except Exception as exc:
            if _reason(exc) is None:
                raise
            return None
        found = model_versions.successor(model_id, listed)
        return found["modelId"] if found else None

    def _verdict(self, model: models.ConfiguredModel) -> lifecycle.ModelVerdict:
        if not models.is_profile(model.model_id):
            found = self.foundation_model(model.role, model.model_id, model.region)
            return dataclasses.replace(found, model_id=model.model_id)
        try:
            profile = self.bedrock(model.region).get_inference_profile(
                inferenceProfileIdentifier=model.model_id)
        except Exception as exc:
            reason = _reason(exc)
            if reason is None:
                raise
            return lifecycle.unavailable(model.role, model.model_id, model.region, reason)
        routed = [self.foundation_model(model.role, m.get("modelArn", ""),
                                        lifecycle.region_of_arn(m.get("modelArn", ""), model.region))
                  for m in profile.get("models") or []]
        return lifecycle.combine_profile(model.role, model.model_id, model.region, profile, routed)

    def check(self, configured: list[models.ConfiguredModel]) -> list[lifecycle.ModelVerdict]:
        return [self.verdict(m) for m in configured]

    def list_models(self, region: str, provider: str | None = None) -> list[dict]:
        """`ListFoundationModels` in a region (for reading the exact id of a model)."""
        kwargs = {"byProvider": provider} if provider else {}
        return self.bedrock(region).list_foundation_models(**kwargs).get("modelSummaries", [])

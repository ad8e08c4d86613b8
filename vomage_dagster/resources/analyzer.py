"""The mood of a transcript from a Bedrock text model, through Converse with a forced tool.

Converse gives Claude (default: Claude Haiku 4.5 through a cross-region inference
profile) and the Nova text models one request shape, so switching model is a setting.
Where a model's API differs (Claude Haiku 5.5 refuses `temperature` and thinks unless
told not to), `prompts.converse_request` shapes the request by the model id.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.domain import models, prompts
from vomage_dagster.domain.mood import Mood, validate_mood
from vomage_dagster.resources.aws import client, model_unavailable


class MoodAnalyzer(ConfigurableResource):
    model_id: str = models.with_profile(models.DEFAULT_ANALYSIS_MODEL, models.DEFAULT_PROFILE_PREFIX)
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def bedrock(self) -> Any:
        return client("bedrock-runtime", self.region_name, self.endpoint_url)

    def analyze(self, transcript: str, language: str) -> tuple[Mood, dict]:
        """The validated mood, and the call's token usage (for its cost)."""
        try:
            answer = self.bedrock.converse(**prompts.converse_request(self.model_id, transcript, language))
        except Exception as exc:
            final = model_unavailable(exc, self.model_id)
            if final is not None:
                raise final from exc
            raise
        mood = validate_mood(prompts.tool_input_from_converse(answer))
        return mood, prompts.converse_usage(answer)

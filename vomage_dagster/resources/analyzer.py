"""Claude on Bedrock: the mood of a transcript, through a forced tool call."""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableResource

from ..domain import prompts
from ..domain.mood import Mood, validate_mood
from .aws import client


class MoodAnalyzer(ConfigurableResource):
    model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def bedrock(self) -> Any:
        return client("bedrock-runtime", self.region_name, self.endpoint_url)

    def analyze(self, transcript: str, language: str) -> tuple[Mood, dict]:
        """The validated mood, and the call's usage figures (tokens) for cost tracking."""
        body = prompts.analysis_request(transcript, language)
        resp = self.bedrock.invoke_model(
            modelId=self.model_id,
            body=prompts.dumps(body),
            contentType="application/json",
            accept="application/json",
        )
        answer = json.loads(resp["body"].read())
        mood = validate_mood(prompts.tool_input_from_response(answer))
        return mood, answer.get("usage", {})

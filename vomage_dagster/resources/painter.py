"""Nova Canvas on Bedrock: one 1024×1024 image for a prompt."""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableResource

from ..domain import prompts
from .aws import client


class ImagePainter(ConfigurableResource):
    model_id: str = "amazon.nova-canvas-v1:0"
    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    size: int = 1024

    @property
    def bedrock(self) -> Any:
        return client("bedrock-runtime", self.region_name, self.endpoint_url)

    def paint(self, prompt: str) -> bytes:
        """PNG bytes for the prompt."""
        resp = self.bedrock.invoke_model(
            modelId=self.model_id,
            body=prompts.dumps(prompts.image_request(prompt, self.size)),
            contentType="application/json",
            accept="application/json",
        )
        return prompts.image_from_response(json.loads(resp["body"].read()))

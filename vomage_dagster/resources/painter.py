"""The mood image from a Bedrock image model: one adapter per family (domain.image_models),
the answer normalised to the 1024×1024 PNG the record promises."""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.domain import image_models, models, prompts
from vomage_dagster.resources.aws import client, model_unavailable


class ImagePainter(ConfigurableResource):
    model_id: str = models.DEFAULT_IMAGE_MODEL
    region_name: str = models.DEFAULT_IMAGE_REGION
    endpoint_url: str | None = None

    @property
    def bedrock(self) -> Any:
        return client("bedrock-runtime", self.region_name, self.endpoint_url)

    def paint(self, prompt: str, seed: int | None = None) -> bytes:
        """A 1024×1024 PNG for the prompt; `seed` makes it one recording's own picture."""
        from vomage_dagster.domain.errors import CONTENT_FILTERED, ProcessingError

        try:
            resp = self.bedrock.invoke_model(
                modelId=self.model_id,
                body=prompts.dumps(image_models.request_body(self.model_id, prompt, seed)),
                contentType="application/json",
                accept="application/json",
            )
        except Exception as exc:
            final = model_unavailable(exc, self.model_id)
            if final is not None:
                raise final from exc
            # Nova Canvas refuses a filtered prompt with a ValidationException, not a body.
            message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
            if "content filter" in message.lower():
                raise ProcessingError(CONTENT_FILTERED, "the image model's content filter refused "
                                                        f"the prompt ({message[:200]})") from exc
            raise
        png = image_models.image_from_response(self.model_id, json.loads(resp["body"].read()))
        return image_models.normalise(png)

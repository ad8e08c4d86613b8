"""EventBridge: "Mood Ready" (the post can be shown, its image follows), "Processing
Complete" and "Processing Error", for the app's other services."""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.resources.aws import client

SOURCE = "vomage.voice-processing"
MOOD_READY = "Mood Ready"
COMPLETE = "Processing Complete"
ERROR = "Processing Error"


class EventPublisher(ConfigurableResource):
    event_bus: str = "default"
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    def publish(self, detail_type: str, detail: dict) -> None:
        events: Any = client("events", self.region_name, self.endpoint_url)
        resp = events.put_events(
            Entries=[{
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, ensure_ascii=False, default=str),
                "EventBusName": self.event_bus,
            }]
        )
        if resp.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {resp['Entries']}")

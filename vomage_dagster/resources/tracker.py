"""Processing status as the app sees it: DynamoDB for truth, Redis for the live view,
EventBridge for the other services. Assets and sensors report through this one place.
"""

from __future__ import annotations

import logging

from dagster import ConfigurableResource

from ..domain import status as st
from ..domain.errors import ProcessingError
from .cache import Cache
from .events import ERROR, EventPublisher
from .status import StatusTable

log = logging.getLogger(__name__)


class ProcessingTracker(ConfigurableResource):
    status: StatusTable
    cache: Cache
    events: EventPublisher

    def register(self, recording_id: str, upload_key: str) -> dict | None:
        """The new `uploaded` item, or None if the recording was known already."""
        item = self.status.register(recording_id, upload_key)
        if item is not None:
            self._push(recording_id, item)
        return item

    def advance(self, recording_id: str, stage: str, **extra: object) -> bool:
        item = self.status.advance(recording_id, stage, dict(extra))
        if item is not None:
            self._push(recording_id, item)
        return item is not None

    def complete(self, recording_id: str, attempt: int | None = None) -> bool:
        """Mark complete (once): False if the recording was already final or, with
        `attempt`, is on another attempt."""
        item = self.status.advance(recording_id, st.COMPLETE, attempt=attempt)
        if item is not None:
            self._push(recording_id, item)
        return item is not None

    def fail(self, recording_id: str, error: ProcessingError, attempt: int | None = None,
             claim: str | None = None) -> bool:
        """Mark failed (once) and announce it; False if the recording was already final
        (or, with `attempt`, is on another attempt; with `claim`, claimed by another run)."""
        item = self.status.fail(recording_id, error.as_dict(), attempt, claim)
        if item is not None:
            log.info("recording %s failed: %s", recording_id, error.code)
            self._push(recording_id, item)
            self.events.publish(ERROR, {"recording_id": recording_id, "error": error.as_dict()})
        return item is not None

    def _push(self, recording_id: str, item: dict) -> None:
        """The live view: `status:<id>` key (1 h) and a message on channel `status:<id>`.
        `item` is what the status write returned, so the push costs no extra read."""
        self.cache.set_json("status", recording_id, item)
        self.cache.publish(f"status:{recording_id}", item)


def is_terminal(item: dict | None) -> bool:
    return item is not None and item.get("stage") in st.TERMINAL

"""A new attempt of a failed, retryable recording, through the same door as any upload:
a message on the uploads queue. Shared by `vomage retry` and the app's retry button."""

from __future__ import annotations

from dataclasses import dataclass

from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.tracker import ProcessingTracker
from vomage_dagster.telemetry import tracing


@dataclass(frozen=True)
class RetryOutcome:
    queued: bool
    attempt: int | None
    reason: str  # for the person who asked: why not, or what happens now


def retry(tracker: ProcessingTracker, queue: UploadQueue, recording_id: str) -> RetryOutcome:
    item = tracker.status.get(recording_id)
    if item is None:
        return RetryOutcome(False, None, f"no status for {recording_id}")
    attempt = tracker.retry(recording_id)
    if attempt is None:
        return RetryOutcome(False, None, f"{recording_id} is {item['stage']}"
                            + (f" ({item['error']['code']}, not retryable)" if item.get("error") else "")
                            + ": only a failed, retryable recording can be retried")
    upload = parse_upload_key(item["upload_key"])
    try:
        with tracing.recording_span("retry", recording_id, attributes={"vomage.attempt": attempt}) as span:
            # The new attempt's ingest continues this span (the message's trace context).
            queue.send({"recording_id": recording_id, "s3_key": upload.key, "user_id": upload.user_id,
                        "attempt": attempt, "metadata": {}}, attributes=tracing.carrier_of(span))
    except Exception as exc:
        # The attempt is reset but not queued: say so in its status, never leave it waiting.
        # (A retry killed right here is found by stranded_recordings_sensor and queued again.)
        tracker.fail(recording_id, ProcessingError(
            "retry_not_queued", f"the retry could not be queued ({type(exc).__name__}); try again",
            retryable=True), attempt)
        return RetryOutcome(False, attempt, f"{recording_id}: attempt {attempt} could not be queued "
                            f"({type(exc).__name__}); it is failed again and can be retried")
    return RetryOutcome(True, attempt, f"{recording_id}: attempt {attempt} queued")

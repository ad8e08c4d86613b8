"""A recording's life as the platform carries it out: each transition of
`domain/lifecycle.py` written to DynamoDB (the truth), pushed to Redis for the live view,
announced on EventBridge when it fails; and the published record written and retracted
beside the status it belongs to. Assets, sensors, the ingest and the CLI all go through
this one place.
"""

from __future__ import annotations

import datetime as dt
import logging

from dagster import ConfigurableResource

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.resources import auto_retry, status_view
from vomage_dagster.resources.cache import Cache
from vomage_dagster.resources.events import ERROR, EventPublisher
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.telemetry import tracing

log = logging.getLogger(__name__)


class Superseded(Exception):
    """The recording is no longer this run's to end (failed meanwhile, retried, taken for dead)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ProcessingTracker(ConfigurableResource):
    status: StatusTable
    cache: Cache
    events: EventPublisher
    records: RecordsTable
    # Automatic retries of a retryable failure (`fail_or_retry`, resources/auto_retry.py):
    # how many in a recording's life, the first one's backoff, and the queue they go
    # through (empty: none, a retryable failure is failed at once).
    auto_retries: int = 0
    retry_backoff_s: float = 5.0
    retry_queue: str = ""

    def _do(self, transition: life.Transition, language: str | None = None,
            view: tuple[float, str] | None = None) -> dict | None:
        """Write `transition` with what the user reads (`status_view`), push it live."""
        item = self.status.execute(status_view.viewed(transition, self.cache, language, view))
        if item is not None:
            status_view.seen(self.cache, item)
            self._push(transition.recording_id, item)
        return item

    def write(self, transition: life.Transition, view: tuple[float, str] | None = None) -> dict | None:
        """A transition built elsewhere (`auto_retry`), written as every other: the item, or None."""
        return self._do(transition, view=view)

    def register(self, recording_id: str, upload_key: str) -> dict | None:
        """The new `uploaded` item, or None if the recording was known already."""
        return self._do(life.register(recording_id, upload_key, _now()))

    def own(self, recording_id: str, attempt: int, owner: str) -> dict | None:
        """The item once `owner` owns `attempt`; None if another run does, or it moved on."""
        return self._do(life.own(recording_id, attempt, owner, _now()))

    def advance(self, recording_id: str, stage: str, attempt: int, owner: str, **shown: object) -> bool:
        """`shown`: what the app may show now; `language` (the upload's) or a transcript's
        language becomes the recording's `language`, which its messages are written in."""
        transcript = shown.get("transcript")
        language = shown.get("language") or (transcript.get("language") if isinstance(transcript, dict) else None)
        if language:
            shown["language"] = language
        return self._do(life.advance(recording_id, stage, attempt, owner, _now(), shown),
                        str(language) if language else None) is not None

    def complete(self, recording_id: str, attempt: int, owner: str) -> bool:
        return self._do(life.complete(recording_id, attempt, owner, _now())) is not None

    def fail(self, recording_id: str, error: ProcessingError, attempt: int | None = None,
             owner: str | None = None, language: str | None = None) -> bool:
        """Mark failed (once) and announce it; False if the guard refused (see `life.fail`)."""
        now = _now()
        item = self._do(life.fail(recording_id, error.as_dict(), now, attempt, owner), language)
        if item is not None:
            log.info("recording %s failed: %s", recording_id, error.code)
            began = item.get("created_at")
            tracing.finish_recording(recording_id, dt.datetime.fromisoformat(began) if began else now, now, "failed",
                                     error_code=error.code)
            self.events.publish(ERROR, {"recording_id": recording_id, "error": error.as_dict()})
        return item is not None

    def fail_or_retry(self, recording_id: str, error: ProcessingError, attempt: int | None = None,
                      owner: str | None = None, language: str | None = None) -> str:
        """A failure retried automatically while it may be (a new attempt, queued after a
        backoff), else failed: `auto_retry.RETRIED`, `FAILED` or `REFUSED`."""
        return auto_retry.fail_or_retry(self, recording_id, error, attempt, owner, language)

    def retry(self, recording_id: str) -> int | None:
        """A new attempt of a failed, retryable recording: its number, or None if refused."""
        item = self._do(life.retry(recording_id, _now()))
        return None if item is None else int(item["attempt"])

    def supersede(self, recording_id: str, attempt: int, dead_owner: str, owner: str) -> dict | None:
        """`owner` takes over an attempt whose owner's run ended without ending it."""
        return self._do(life.supersede(recording_id, attempt, dead_owner, owner, _now()))

    def requeue(self, recording_id: str, attempt: int, dead_owner: str | None = None) -> int | None:
        """Count one re-queue of a stalled attempt (releasing `dead_owner`, whose run ended
        without ending it); the count, or None if it moved on meanwhile."""
        item = self._do(life.requeue(recording_id, attempt, _now(), dead_owner))
        return None if item is None else int(item["requeues"])

    def publish(self, record: dict, attempt: int, owner: str) -> None:
        """Write the record and mark the recording complete, only while this run owns it.

        A run can outlive the decision that it was dead (the stranded sensor failed its
        recording), and a recording can be retried while an old run of it is still going:
        such a run must publish nothing. The status is checked before the record is
        written and the completion is conditional on the ownership; a completion refused
        after the write takes the record back. `Superseded` if it is not this run's."""
        rid = record["recording_id"]
        current = self.status.get(rid)
        if not _owns(current, attempt, owner) or life.is_final(current):
            raise Superseded(_describe(current))
        self.records.put(record)
        if self.complete(rid, attempt, owner):
            if record.get("uploaded_at"):
                tracing.finish_recording(rid, dt.datetime.fromisoformat(record["uploaded_at"]),
                                         dt.datetime.fromisoformat(record["published_at"]), "complete")
            return
        self.records.delete(record)
        raise Superseded(_describe(self.status.get(rid)))

    def retract(self, recording_id: str) -> None:
        """Remove the record of a recording just failed from outside its run. The last stage
        writes the record and then marks the recording complete; a run killed between the
        two leaves a record for a recording that is now failed. Failed means no published
        post (a retry writes it again)."""
        found = self.records.get(recording_id)
        if found is not None:
            self.records.delete(found)

    def _push(self, recording_id: str, item: dict) -> None:
        """The live view: `status:<id>` key (1 h) and a message on channel `status:<id>`.
        `item` is what the status write returned, so the push costs no extra read."""
        self.cache.set_json("status", recording_id, item)
        self.cache.publish(f"status:{recording_id}", item)


def _owns(item: dict | None, attempt: int, owner: str) -> bool:
    return item is not None and int(item.get("attempt", 1)) == attempt and item.get("owner") == owner


def _describe(item: dict | None) -> str:
    if item is None:
        return "the recording has no status"
    code = (item.get("error") or {}).get("code")
    return (f"the recording is now {item.get('stage')}" + (f" ({code})" if code else "")
            + f", attempt {item.get('attempt', 1)}, not this run's to end")

"""A retryable failure, retried automatically before anyone is told it failed.

`fail_or_retry` answers a failure of a recording's attempt. When it may be retried
without asking (`lifecycle.auto_retryable`) and the recording has automatic retries left,
the attempt ends in a new `uploaded` attempt at once (`lifecycle.auto_retry`, one
conditional write: two answers to one failure retry it once) and a message for it goes
on the uploads queue, delayed by the backoff (`domain/retries.py`): the ingest launches
its run when the delay is over, as for any upload. The user reads "trying again in 5 s",
never "failed", meanwhile. Otherwise, or once the retries are spent, the recording is
failed as before, and a person may retry it.

Bounded: at most `auto_retries` automatic retries in a recording's life. Never lost: a
process that dies between the write and the send leaves a new attempt nobody owns, which
the stranded-recordings sensor queues again; a send that fails fails the new attempt
(retryable) instead of leaving it waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.domain import retries
from vomage_dagster.domain.errors import ProcessingError
from vomage_dagster.domain.keys import parse_upload_key
from vomage_dagster.domain.status_messages import retrying_message
from vomage_dagster.resources.queue import UploadQueue
from vomage_dagster.resources.stage_timings import StageTimings
from vomage_dagster.resources.status_view import language_for

if TYPE_CHECKING:
    from vomage_dagster.resources.tracker import ProcessingTracker

log = logging.getLogger(__name__)

RETRIED = "retried"
FAILED = "failed"
REFUSED = "refused"  # not this caller's to end: another attempt, another owner, final already


def fail_or_retry(tracker: ProcessingTracker, recording_id: str, error: ProcessingError,
                  attempt: int | None = None, owner: str | None = None, language: str | None = None) -> str:
    """RETRIED, FAILED, or REFUSED (the guards of `auto_retry` and `fail` both refused)."""
    item = tracker.status.get(recording_id) if _may_retry(tracker, error) else None
    if item is None or life.is_final(item):
        return FAILED if tracker.fail(recording_id, error, attempt, owner) else REFUSED
    current = int(item.get("attempt", 1))
    number = current if attempt is None else attempt
    spent = int(item.get("auto_retries", 0))
    upload = parse_upload_key(str(item.get("upload_key", "")))
    if number != current or spent >= tracker.auto_retries or upload is None:
        return FAILED if tracker.fail(recording_id, error, number, owner) else REFUSED
    now = dt.datetime.now(dt.UTC)
    delay = retries.delay_s(spent + 1, tracker.retry_backoff_s, recording_id)
    lang = language_for(tracker.cache, recording_id, language or item.get("language"))
    eta = delay + StageTimings(tracker.cache).seconds_left(life.UPLOADED)
    transition = life.auto_retry(recording_id, error.as_dict(), now, number, owner, spent, tracker.auto_retries,
                                 now + dt.timedelta(seconds=delay))
    retried = tracker.write(transition, view=(eta, retrying_message(lang, delay, spent + 1, tracker.auto_retries)))
    if retried is None:  # answered meanwhile, or no longer this caller's: `fail`'s guard decides
        return FAILED if tracker.fail(recording_id, error, number, owner) else REFUSED
    queue = UploadQueue(queue_name=tracker.retry_queue, dead_letter_queue_name="",
                        region_name=tracker.status.region_name, endpoint_url=tracker.status.endpoint_url)
    try:
        queue.send({"recording_id": recording_id, "s3_key": upload.key, "user_id": upload.user_id,
                    "attempt": number + 1, "metadata": {}}, delay_s=delay)
    except Exception as exc:  # the retry cannot start: say so rather than leave it waiting
        log.warning("recording %s: automatic retry not queued (%s)", recording_id, type(exc).__name__)
        tracker.fail(recording_id, ProcessingError(
            error.code, f"{error.message}; the automatic retry could not be queued ({type(exc).__name__})",
            retryable=True), number + 1)
        return FAILED
    log.info("recording %s: %s on attempt %d, retry %d of %d in %d s", recording_id, error.code, number,
             spent + 1, tracker.auto_retries, delay)
    return RETRIED


def _may_retry(tracker: ProcessingTracker, error: ProcessingError) -> bool:
    return bool(tracker.retry_queue) and tracker.auto_retries > 0 and life.auto_retryable(error.as_dict())

"""Turn a stage's exception into a failed recording, exactly once.

Bad input (`ProcessingError` with retryable=False) ends the run with a Dagster
`Failure` that forbids retries; anything unexpected is a retryable failure and re-raises,
so the run shows the real traceback, except a request AWS refused as malformed
(`ValidationException`), which would be refused again: final, not retried. A retryable
failure is first retried automatically (a new attempt after a backoff,
`resources/auto_retry.py`) while the recording has retries left; only then is it
failed. A `Failure` raised by the stage itself passes untouched: the stage has decided
what the status says.
"""


import logging
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure, MetadataValue

from vomage_dagster.domain.errors import INTERNAL, ProcessingError
from vomage_dagster.domain.lifecycle import Attempt
from vomage_dagster.resources.auto_retry import RETRIED
from vomage_dagster.resources.tracker import ProcessingTracker

log = logging.getLogger(__name__)


@contextmanager
def recording_stage(tracker: ProcessingTracker, att: Attempt) -> Iterator[None]:
    """Failures inside the block end `att`'s recording failed (while the run owns it)."""
    try:
        yield
    except Failure:
        raise  # raised on purpose by the stage, which has kept the status as it should be
    except ProcessingError as exc:
        outcome = tracker.fail_or_retry(att.recording_id, exc, att.number, att.owner)
        retried = " (retried automatically as a new attempt)" if outcome == RETRIED else ""
        raise Failure(
            description=f"{exc.code}: {exc.message}{retried}",
            metadata={"error_code": exc.code, "retryable": MetadataValue.bool(exc.retryable)},
            allow_retries=exc.retryable,
        ) from exc
    except Exception as exc:
        refused = refused_as_invalid(exc)
        try:
            # The user and the operator read this: the exception's type only, never its text
            # (it may hold a server path); the traceback stays in the run's own logs.
            tracker.fail_or_retry(att.recording_id, ProcessingError(
                INTERNAL, f"internal error ({refused or type(exc).__name__}); the run's logs have the details",
                retryable=refused is None), att.number, att.owner)
        except Exception:  # the status store may be what failed; keep the original error
            log.exception("could not mark recording %s failed", att.recording_id)
        if refused is not None:
            raise Failure(description=f"{INTERNAL}: an AWS call was refused as invalid ({refused})",
                          metadata={"error_code": INTERNAL, "retryable": MetadataValue.bool(False)},
                          allow_retries=False) from exc
        raise


def refused_as_invalid(exc: Exception) -> str | None:
    """`Service.Operation ValidationException` when AWS refused the request itself as
    malformed (a request this code built wrong, a field over a service's limit): the same
    request is refused again, so retrying it only spends time and quota. None otherwise."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError) or exc.response.get("Error", {}).get("Code") != "ValidationException":
        return None
    return f"{exc.operation_name} ValidationException"

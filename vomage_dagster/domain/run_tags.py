"""The tags of a processing run: which recordings it covers, and for which attempt.

The ingest launches every run with one tag per recording, `vomage/recording/<id>` =
attempt. "Does a run of this attempt exist" is then one tag query for batches and single
runs alike, and the run knows which attempt of each recording it is to own. A run
without these tags was started by hand (the UI, a backfill) and works on whatever
attempt is current.
"""

RECORDING_TAG_PREFIX = "vomage/recording/"
BATCH_TAG = "vomage/batch_size"
LAUNCHED_BY_TAG = "vomage/launched-by"


def recording_tag(recording_id: str) -> str:
    return f"{RECORDING_TAG_PREFIX}{recording_id}"


def recordings_of_run(tags: dict[str, str]) -> dict[str, int]:
    """Recording id → attempt for every recording a run covers."""
    return {k[len(RECORDING_TAG_PREFIX):]: int(v) for k, v in tags.items()
            if k.startswith(RECORDING_TAG_PREFIX)}


TRACE_TAG_PREFIX = "vomage/trace/"  # recording → the traceparent its run continues (the ingest's span)


def trace_tag(recording_id: str) -> str:
    return f"{TRACE_TAG_PREFIX}{recording_id}"


def traces_of_run(tags: dict[str, str]) -> dict[str, dict[str, str]]:
    """Recording id → the trace context (a `traceparent` carrier) the ingest handed on."""
    return {k[len(TRACE_TAG_PREFIX):]: {"traceparent": v} for k, v in tags.items() if k.startswith(TRACE_TAG_PREFIX)}

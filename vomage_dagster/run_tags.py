"""The tags a processing run carries, read by the sensors that plan and watch runs and by
the last stage, which checks it still owns its recordings before it publishes.

Every run has one tag per recording, `vomage/recording/<id>` = attempt: "does a run of
this attempt exist" is then one tag query for batches and single runs alike.
"""

RECORDING_TAG = "vomage/recording_id"  # one-recording runs: the recording
ATTEMPT_TAG = "vomage/attempt"
RECORDING_TAG_PREFIX = "vomage/recording/"  # every run: one tag per recording → attempt
BATCH_TAG = "vomage/batch_size"
UPLOAD_KEY_TAG = "vomage/upload_key"  # one-recording runs from a sensor: the upload
# Runs the planner requested: the claim in the status table they were requested under,
# which the run takes before it processes anything (`StatusTable.take_claim`).
CLAIM_TAG = "vomage/claim"


def recording_tag(recording_id: str) -> str:
    return f"{RECORDING_TAG_PREFIX}{recording_id}"


def recordings_of_run(tags: dict[str, str]) -> dict[str, int]:
    """Recording id → attempt for every recording a run covers."""
    return {k[len(RECORDING_TAG_PREFIX):]: int(v) for k, v in tags.items()
            if k.startswith(RECORDING_TAG_PREFIX)}

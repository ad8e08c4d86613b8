"""The app's live view: a small web page and its API (`vomage app`, Starlette on uvicorn).

The user signs in with the app's Cognito user pool (`sign_in.py`; every token checked
against the pool's keys, `auth.py`) and sees their recordings newest first (`feed.py`).
The page records from the microphone (or takes a file), uploads it straight to S3 with a
presigned POST, then follows the recording over a WebSocket fed by the Redis
`status:<id>` channel the platform already publishes, through one subscription per
process (`hub.py`, `follow.py`): stage, progress and ETA, the words and the mood as soon
as they exist, then the image, or the error with a retry button. Each user's API calls
are rate-limited per process (`limits.py`).
No Dagster here: the app reads what the pipeline writes (status, outputs, records).
"""

"""The user's thumbs up or down on their picture (`POST /api/recordings/<id>/rating`).

A rating is stored on the user's own record as `rating` ("up" or "down") and `rated_at`
(ISO, UTC); the metric export sends them as `UserSatisfactionScore` (`Vomage/UX`). Only a
published recording has a record: rating one in progress is refused (409), another
user's too (403), as everywhere else in the live view.
"""

from __future__ import annotations

import datetime as dt

from vomage_dagster.app.views import Refused, owned_status
from vomage_dagster.resources.records import RecordsTable
from vomage_dagster.resources.status_table import StatusTable
from vomage_dagster.resources.store import ObjectStore

SCORES = ("up", "down")


def parse_score(body: object) -> str:
    score = body.get("score") if isinstance(body, dict) else None
    if score not in SCORES:
        raise Refused(400, 'score must be "up" or "down"')
    return score


def rate(user_id: str, recording_id: str, score: str, records: RecordsTable, status: StatusTable,
         store: ObjectStore, now: dt.datetime | None = None) -> dict:
    """Store the user's rating of their published recording's image; a new rating
    replaces the last (the user changed their mind)."""
    from botocore.exceptions import ClientError

    record = records.get(recording_id)
    if record is None:
        owned_status(status, store, user_id, recording_id)  # 404 unknown, 403 another's
        raise Refused(409, "the recording is not complete yet")
    if record.get("user_id") != user_id:
        raise Refused(403, "this recording is not yours")
    rated_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
    try:
        records.table.update_item(
            Key={"user_id": user_id, "created_at": record["created_at"]},
            UpdateExpression="SET #r = :r, #t = :t",
            ConditionExpression="attribute_exists(#u) AND #id = :id",
            ExpressionAttributeNames={"#r": "rating", "#t": "rated_at", "#u": "user_id", "#id": "recording_id"},
            ExpressionAttributeValues={":r": score, ":t": rated_at, ":id": recording_id})
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise Refused(409, "the recording was taken back; rate it once it is complete again") from None
        raise
    return {"recording_id": recording_id, "rating": score, "rated_at": rated_at}

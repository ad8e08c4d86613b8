"""DynamoDB: the per-recording processing status the app shows live.

Every write is conditional so a stage never moves backwards and a terminal status
(`complete`, `failed`) is never overwritten: two runs racing, or a late retry, cannot
turn a finished recording back into a running one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dagster import ConfigurableResource

from ..domain import lifetimes
from ..domain import status as st
from .aws import client, dynamodb_table

# What `take_claim` says to a run.
TAKEN, HELD, WAITING = "taken", "held", "waiting"


def _stale_before(seconds: float) -> str:
    """The time before which a claim is stale, in the items' timestamp format."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def dynamo_numbers(value: Any) -> Any:
    """Floats, also nested, as the Decimals DynamoDB takes."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: dynamo_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dynamo_numbers(v) for v in value]
    return value


def plain_numbers(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the CLI and JSON want floats and ints."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


class StatusTable(ConfigurableResource):
    table_name: str
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def table(self) -> Any:
        return dynamodb_table(self.table_name, self.region_name, self.endpoint_url)

    def register(self, recording_id: str, upload_key: str) -> dict | None:
        """Create the `uploaded` item if there is none: the new item, or None if one existed."""
        from botocore.exceptions import ClientError

        now = _now()
        item = {
            "recording_id": recording_id,
            "stage": st.UPLOADED,
            "stage_rank": st.RANK[st.UPLOADED],
            "progress": st.PROGRESS[st.UPLOADED],
            "eta_seconds": Decimal(str(st.seconds_left(st.UPLOADED))),
            "error": None,
            "upload_key": upload_key,
            "attempt": 1,
            "created_at": now,
            "updated_at": now,
            lifetimes.TTL_ATTRIBUTE: lifetimes.expires_at(dt.datetime.now(dt.UTC), lifetimes.STATUS_DAYS),
        }
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(recording_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return plain_numbers(item)

    def claim_run(self, recording_id: str, attempt: int, token: str = "",
                  stale_after_s: float = 60.0) -> bool:
        """Claim the right to request the run of `attempt`; True for exactly one claimant.

        Two sensors (S3 and SQS), the ingest service or two deliveries of one message may
        race to request the same recording: the conditional write lets one win. A claim
        older than `stale_after_s` whose run never appeared (a daemon crash between claim
        and launch) may be taken again — the caller checks for the run first. `token`
        names this claim; the run requested under it carries it and takes the claim
        before it does anything (`take_claim`), so a request that outlived its claim (a
        sensor tick resumed after a restart, once another claimant took over) stands down.
        """
        from botocore.exceptions import ClientError

        stale = _stale_before(stale_after_s)
        try:
            self.table.update_item(
                Key={"recording_id": recording_id},
                UpdateExpression=("SET claimed_attempt = :attempt, run_claimed_at = :now, claim_token = :token"
                                  " REMOVE claim_taken"),
                ConditionExpression=(
                    "attribute_exists(recording_id) AND attempt = :attempt AND stage_rank < :terminal"
                    " AND (attribute_not_exists(claimed_attempt) OR claimed_attempt < :attempt"
                    " OR (run_claimed_at < :stale AND attribute_not_exists(claim_taken)))"
                ),
                ExpressionAttributeValues={
                    ":attempt": attempt, ":now": _now(), ":stale": stale,
                    ":terminal": st.RANK[st.COMPLETE], ":token": token,
                },
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def take_claim(self, recording_id: str, attempt: int, token: str,
                   stale_after_s: float = 60.0) -> str:
        """A run requested under claim `token` starts: `TAKEN` if it may process the recording.

        It may if the claim is still its own, if the claim was released (the stranded
        sensor queued the recording again), or if another claimant's claim went stale
        without any run taking it (that claimant died before launching, or its run is
        still queued: that run will stand down). A taken claim never goes stale, so no
        later claimant or run can take it from the run that processes. `HELD`: another
        run took it, or the recording moved on to another attempt; stand down. `WAITING`:
        another claimant claimed it moments ago and its run may yet take it; ask again.
        """
        from botocore.exceptions import ClientError

        stale = _stale_before(stale_after_s)
        try:
            self.table.update_item(
                Key={"recording_id": recording_id},
                UpdateExpression=("SET claim_token = :token, claimed_attempt = :attempt, run_claimed_at = :now,"
                                  " claim_taken = :taken"),
                ConditionExpression=(
                    "attempt = :attempt AND (claim_token = :token OR attribute_not_exists(claimed_attempt)"
                    " OR (attribute_not_exists(claim_taken) AND run_claimed_at < :stale))"),
                ExpressionAttributeValues={":token": token, ":attempt": attempt, ":taken": True,
                                           ":now": _now(), ":stale": stale},
            )
            return TAKEN
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = self.get(recording_id)
        if item is None or int(item.get("attempt", 1)) != attempt or item.get("claim_taken"):
            return HELD
        return WAITING

    def reset_for_retry(self, recording_id: str) -> int | None:
        """Start a new attempt of a failed, retryable recording; its number, or None if refused.

        The one transition that goes back to `uploaded`: an explicit new attempt, counted.
        """
        from botocore.exceptions import ClientError

        try:
            resp = self.table.update_item(
                Key={"recording_id": recording_id},
                UpdateExpression=(
                    "SET stage = :uploaded, stage_rank = :rank, progress = :progress, "
                    "eta_seconds = :eta, #error = :none, updated_at = :now, attempt = attempt + :one "
                    "REMOVE claimed_attempt, run_claimed_at, claim_token, claim_taken, requeues, transcript, mood"
                ),
                ConditionExpression="stage = :failed AND #error.retryable = :true",
                ExpressionAttributeNames={"#error": "error"},
                ExpressionAttributeValues={
                    ":uploaded": st.UPLOADED, ":rank": st.RANK[st.UPLOADED],
                    ":progress": st.PROGRESS[st.UPLOADED],
                    ":eta": Decimal(str(st.seconds_left(st.UPLOADED))), ":none": None,
                    ":now": _now(), ":one": 1, ":failed": st.FAILED, ":true": True,
                },
                ReturnValues="ALL_NEW",
            )
            return int(resp["Attributes"]["attempt"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise

    def advance(self, recording_id: str, stage: str, extra: dict | None = None,
                attempt: int | None = None) -> dict | None:
        """Move to `stage` unless that would go backwards (or, with `attempt`, the
        recording is on another attempt): the item after, or None if refused."""
        return self._update(recording_id, stage, None, extra or {}, attempt)

    def fail(self, recording_id: str, error: dict, attempt: int | None = None,
             claim: str | None = None) -> dict | None:
        """Mark failed with `{code, message, retryable}` (refused, None, once terminal).

        With `attempt`, only that attempt is failed: a run of an old attempt that dies
        late must not fail the retry that followed it. With `claim`, only while that claim
        holds: a run that stood down (another claimant ran the recording) fails nothing."""
        return self._update(recording_id, st.FAILED, error, {}, attempt, claim)

    def _update(self, recording_id: str, stage: str, error: dict | None, extra: dict,
                attempt: int | None = None, claim: str | None = None) -> dict | None:
        from botocore.exceptions import ClientError

        values: dict[str, Any] = {
            ":stage": stage,
            ":rank": st.RANK[stage],
            ":progress": st.PROGRESS[stage],
            ":eta": Decimal(str(st.seconds_left(stage))),
            ":error": error,
            ":now": _now(),
            ":terminal": st.RANK[st.COMPLETE],
        }
        sets = ["stage = :stage", "stage_rank = :rank", "progress = :progress",
                "eta_seconds = :eta", "#error = :error", "updated_at = :now"]
        for i, value in enumerate(extra.values()):
            sets.append(f"#x{i} = :x{i}")
            values[f":x{i}"] = dynamo_numbers(value)
        names = {"#error": "error", **{f"#x{i}": k for i, k in enumerate(extra)}}
        condition = ("(attribute_not_exists(recording_id) OR stage_rank < :rank"
                     " OR (#stage = :stage AND stage_rank < :terminal))")
        if attempt is not None:
            condition += " AND attempt = :attempt"
            values[":attempt"] = attempt
        if claim is not None:
            condition += " AND claim_token = :claim"
            values[":claim"] = claim
        try:
            resp = self.table.update_item(
                Key={"recording_id": recording_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames={**names, "#stage": "stage"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return plain_numbers(resp["Attributes"])

    def stalled(self, before: dt.datetime, limit: int = 200) -> list[dict]:
        """Recordings not final whose status has not changed since `before` (a scan: the
        volume of in-progress items is small; at scale, a GSI on (stage, updated_at))."""
        from boto3.dynamodb.conditions import Attr

        cond = Attr("stage_rank").lt(st.RANK[st.COMPLETE]) & Attr("updated_at").lt(
            before.isoformat(timespec="milliseconds"))
        return self._scan(cond, limit)

    def for_upload_prefix(self, prefix: str) -> list[dict]:
        """Items whose upload key starts with `prefix` (a user's uploads: erasure; a scan)."""
        from boto3.dynamodb.conditions import Attr

        return self._scan(Attr("upload_key").begins_with(prefix))

    def _scan(self, condition: Any, limit: int | None = None) -> list[dict]:
        """Every item matching `condition` (at most `limit`), page by page."""
        items, start_key = [], None
        while limit is None or len(items) < limit:
            kwargs = {"FilterExpression": condition, "ConsistentRead": True}
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            resp = self.table.scan(**kwargs)
            items += [plain_numbers(i) for i in resp.get("Items", [])]
            start_key = resp.get("LastEvaluatedKey")
            if not start_key:
                break
        return items if limit is None else items[:limit]

    def delete(self, recording_id: str) -> None:
        self.table.delete_item(Key={"recording_id": recording_id})

    def note_requeue(self, recording_id: str, attempt: int) -> int | None:
        """Count one re-queue of a stalled attempt (and touch it); the count, or None if it
        moved on meanwhile (another attempt, or final)."""
        from botocore.exceptions import ClientError

        try:
            resp = self.table.update_item(
                Key={"recording_id": recording_id},
                UpdateExpression="SET requeues = if_not_exists(requeues, :zero) + :one, updated_at = :now "
                                 "REMOVE claimed_attempt, run_claimed_at, claim_token, claim_taken",
                ConditionExpression="attempt = :attempt AND stage_rank < :terminal",
                ExpressionAttributeValues={":zero": 0, ":one": 1, ":now": _now(), ":attempt": attempt,
                                           ":terminal": st.RANK[st.COMPLETE]},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return int(resp["Attributes"]["requeues"])

    def get(self, recording_id: str) -> dict | None:
        item = self.table.get_item(Key={"recording_id": recording_id}, ConsistentRead=True)
        return plain_numbers(item["Item"]) if "Item" in item else None

    def failed_between(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """Recordings that failed in [start, end). A scan: fine for the metric export's
        volume here; at scale, a GSI on (stage, updated_at) or a DynamoDB stream."""
        from boto3.dynamodb.conditions import Attr

        cond = Attr("stage").eq(st.FAILED) & Attr("updated_at").between(
            start.isoformat(timespec="milliseconds"), end.isoformat(timespec="milliseconds"))
        return [i for i in self._scan(cond) if i["updated_at"] < end.isoformat(timespec="milliseconds")]

    def get_many(self, recording_ids: list[str]) -> dict[str, dict]:
        """Batch read, 100 keys a call (DynamoDB's limit)."""
        ddb = client("dynamodb", self.region_name, self.endpoint_url)
        from boto3.dynamodb.types import TypeDeserializer

        de = TypeDeserializer()
        found: dict[str, dict] = {}
        ids = list(dict.fromkeys(recording_ids))
        for i in range(0, len(ids), 100):
            request = {self.table_name: {"Keys": [{"recording_id": {"S": r}} for r in ids[i:i + 100]],
                                         "ConsistentRead": True}}
            while request:
                resp = ddb.batch_get_item(RequestItems=request)
                for raw in resp["Responses"].get(self.table_name, []):
                    item = plain_numbers({k: de.deserialize(v) for k, v in raw.items()})
                    found[item["recording_id"]] = item
                request = resp.get("UnprocessedKeys") or None
        return found


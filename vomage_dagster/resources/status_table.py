"""DynamoDB: the per-recording status item, changed only by the transitions of
`domain/lifecycle.py`.

`execute` compiles a transition's guard into a ConditionExpression and its changes into
an UpdateExpression, so each change is one conditional write: a stage never moves
backwards, a final status is never overwritten, and only the run that owns an attempt
writes it, whatever races. The rules themselves are in the lifecycle module; this is
their executor and the table's reads.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.resources.aws import client
from vomage_dagster.resources.dynamo_table import DynamoTable


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


class _Names:
    """Placeholders for attribute names (#n0 …) and values (:v0 …) of one request."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, path: str) -> str:
        parts = []
        for part in path.split("."):
            key = next((k for k, v in self.names.items() if v == part), None)
            if key is None:
                key = f"#n{len(self.names)}"
                self.names[key] = part
            parts.append(key)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = dynamo_numbers(value)
        return key


def condition_expression(cond: life.Cond, n: _Names) -> str:
    """A guard as DynamoDB condition syntax."""
    if isinstance(cond, life.Exists):
        return f"attribute_exists({n.name(cond.path)})"
    if isinstance(cond, life.Absent):
        return f"attribute_not_exists({n.name(cond.path)})"
    if isinstance(cond, life.Eq):
        return f"{n.name(cond.path)} = {n.value(cond.value)}"
    if isinstance(cond, life.Below):
        return f"{n.name(cond.path)} < {n.value(cond.value)}"
    if isinstance(cond, life.All):
        return "(" + " AND ".join(condition_expression(p, n) for p in cond.parts) + ")"
    if isinstance(cond, life.Either):
        return "(" + " OR ".join(condition_expression(p, n) for p in cond.parts) + ")"
    raise TypeError(f"no DynamoDB form for {cond!r}")


def update_expression(changes: tuple[life.Change, ...], n: _Names) -> str:
    sets, removes = [], []
    for change in changes:
        if isinstance(change, life.Set):
            sets.append(f"{n.name(change.name)} = {n.value(change.value)}")
        elif isinstance(change, life.Add):
            name = n.name(change.name)
            sets.append(f"{name} = if_not_exists({name}, {n.value(0)}) + {n.value(change.amount)}")
        elif isinstance(change, life.SetIfAbsent):
            name = n.name(change.name)
            sets.append(f"{name} = if_not_exists({name}, {n.value(change.value)})")
        else:
            removes.append(n.name(change.name))
    return " ".join(part for part in (
        "SET " + ", ".join(sets) if sets else "", "REMOVE " + ", ".join(removes) if removes else "") if part)


def update_request(transition: life.Transition) -> dict:
    """The UpdateItem parameters (without table) of a transition."""
    n = _Names()
    update = update_expression(transition.changes, n)
    condition = condition_expression(transition.guard, n)
    return {"Key": {"recording_id": transition.recording_id}, "UpdateExpression": update,
            "ConditionExpression": condition, "ExpressionAttributeNames": n.names,
            "ExpressionAttributeValues": n.values, "ReturnValues": "ALL_NEW"}


class StatusTable(DynamoTable):

    def execute(self, transition: life.Transition) -> dict | None:
        """Apply `transition` in one conditional write: the item after it, or None when its
        guard does not hold."""
        from botocore.exceptions import ClientError

        try:
            resp = self.table.update_item(**update_request(transition))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return plain_numbers(resp["Attributes"])

    def get(self, recording_id: str) -> dict | None:
        item = self.table.get_item(Key={"recording_id": recording_id}, ConsistentRead=True)
        return plain_numbers(item["Item"]) if "Item" in item else None

    def get_many(self, recording_ids: list[str]) -> dict[str, dict]:
        """Batch read, 100 keys a call (DynamoDB's limit)."""
        from boto3.dynamodb.types import TypeDeserializer

        ddb = client("dynamodb", self.region_name, self.endpoint_url)
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

    def for_user(self, user_id: str, limit: int = 20) -> list[dict]:
        """The user's most recent recordings, newest first (their index; one page)."""
        from boto3.dynamodb.conditions import Key

        resp = self.table.query(IndexName=life.USER_INDEX, KeyConditionExpression=Key("user_id").eq(user_id),
                                ScanIndexForward=False, Limit=limit)
        return [plain_numbers(i) for i in resp.get("Items", [])]

    def stalled(self, before: dt.datetime, limit: int = 200) -> list[dict]:
        """Recordings not final whose status has not changed since `before` (a scan: the
        volume of in-progress items is small; at scale, a GSI on (stage, updated_at))."""
        from boto3.dynamodb.conditions import Attr

        cond = Attr("stage_rank").lt(life.FINAL_RANK) & Attr("updated_at").lt(life.timestamp(before))
        return self._scan(cond, limit)

    def failed_between(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """Recordings that failed in [start, end). A scan: fine for the metric export's
        volume here; at scale, a GSI on (stage, updated_at) or a DynamoDB stream."""
        from boto3.dynamodb.conditions import Attr

        cond = Attr("stage").eq(life.FAILED) & Attr("updated_at").between(
            life.timestamp(start), life.timestamp(end))
        return [i for i in self._scan(cond) if i["updated_at"] < life.timestamp(end)]

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
        """Erasure only: a recording's life ends in `complete` or `failed`, never deleted."""
        self.table.delete_item(Key={"recording_id": recording_id})

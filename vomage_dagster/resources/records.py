"""DynamoDB VoiceRecords: the app's table of published posts.

Keyed as the product plan has it (user, then time) with an index on the recording id
so one record can be found without knowing its user.
"""

from __future__ import annotations

from typing import Any

from vomage_dagster.domain import lifetimes
from vomage_dagster.resources.dynamo_table import DynamoTable
from vomage_dagster.resources.status_table import dynamo_numbers, plain_numbers

RECORDING_INDEX = "recording_id-index"
DAY_INDEX = "day-index"


class RecordsTable(DynamoTable):

    def put(self, record: dict) -> None:
        """Write the record; the same recording written twice stays one row. It expires
        `lifetimes.RECORD_DAYS` after the recording was made (DynamoDB TTL)."""
        import datetime as dt

        recorded = dt.datetime.fromisoformat(record["recorded_at"])
        item = {**record, lifetimes.TTL_ATTRIBUTE: lifetimes.expires_at(recorded, lifetimes.RECORD_DAYS)}
        self.table.put_item(Item=dynamo_numbers(item))

    def for_user(self, user_id: str) -> list[dict]:
        """Every record of a user (the table's partition key)."""
        from boto3.dynamodb.conditions import Key

        return self._query(KeyConditionExpression=Key("user_id").eq(user_id))

    def delete(self, record: dict) -> None:
        self.table.delete_item(Key={"user_id": record["user_id"], "created_at": record["created_at"]})

    def for_day(self, day: str) -> list[dict]:
        """Every record of a UTC day (YYYY-MM-DD), through the day index."""
        from boto3.dynamodb.conditions import Key

        return self._query(IndexName=DAY_INDEX, KeyConditionExpression=Key("day").eq(day))

    def _query(self, **kwargs: Any) -> list[dict]:
        """Every item a query matches, page by page."""
        items, start = [], None
        while True:
            resp = self.table.query(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
            items += [plain_numbers(i) for i in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return items

    def get(self, recording_id: str) -> dict | None:
        from boto3.dynamodb.conditions import Key

        resp = self.table.query(IndexName=RECORDING_INDEX,
                                KeyConditionExpression=Key("recording_id").eq(recording_id))
        items = resp.get("Items", [])
        return plain_numbers(items[0]) if items else None

"""DynamoDB: the app's users, one item per user, written at their first sign-in.

Keyed by the user id (the pool token's `sub`, what every upload key and record carries)
with an index on the username, so an operator who is given a username finds the user id
(erasure). The item is written once, conditionally: a second sign-in, or two live view
processes seeing the same new user at once, change nothing.
"""

from __future__ import annotations

import datetime as dt

from vomage_dagster.resources.dynamo_table import DynamoTable
from vomage_dagster.resources.status_table import plain_numbers

USERNAME_INDEX = "username-index"


class UsersTable(DynamoTable):

    def first_sign_in(self, user_id: str, username: str, now: dt.datetime | None = None) -> bool:
        """Write the user unless they exist; whether this call wrote them."""
        from botocore.exceptions import ClientError

        at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
        try:
            self.table.put_item(Item={"user_id": user_id, "username": username, "first_sign_in_at": at},
                                ConditionExpression="attribute_not_exists(user_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, user_id: str) -> dict | None:
        found = self.table.get_item(Key={"user_id": user_id}, ConsistentRead=True)
        return plain_numbers(found["Item"]) if "Item" in found else None

    def by_username(self, username: str) -> list[dict]:
        """The users with this username (the index; one, unless a name was reused)."""
        from boto3.dynamodb.conditions import Key

        resp = self.table.query(IndexName=USERNAME_INDEX, KeyConditionExpression=Key("username").eq(username))
        return [plain_numbers(i) for i in resp.get("Items", [])]

    def delete(self, user_id: str) -> bool:
        """Erasure: remove the user's item; whether there was one."""
        resp = self.table.delete_item(Key={"user_id": user_id}, ReturnValues="ALL_OLD")
        return "Attributes" in resp

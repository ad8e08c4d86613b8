"""moto's DynamoDB, its item answers written as JSON directly: every status change of a
recording is an UpdateItem that returns the whole item (the live view pushes it), so the
local stack answers ~6 of them a recording.

moto 5.2.5 writes each answer by walking the operation's output shape, value by value,
in Python: for an item of a few dozen attributes that walk was an eighth of the whole
moto process's CPU under load. An item answer is already in DynamoDB's wire form (each
value a `{type: value}` map), so it is written with `json.dumps`. Anything the wire form
cannot hold as is — binary values (bytes to base64), timestamps — makes `json.dumps`
refuse, and that answer goes through moto's own serializer as before.
"""

from __future__ import annotations

import json
from typing import Any

# Answers that carry items and counts only (no timestamps, no binary outside item values).
ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem",
                             "BatchWriteItem", "Query", "Scan"})

_applied = False
moto_execute_result: Any = None  # moto's own, once installed (tests compare the two)


def without_none(value: Any) -> Any:
    """The value with None members left out, as moto's serializer leaves them out."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def apply() -> None:
    """Install (once; before moto serves a request)."""
    global _applied, moto_execute_result
    if _applied:
        return
    from moto.dynamodb.responses import DynamoResult

    serialize = moto_execute_result = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        operation = context.operation_model
        if operation.name in ITEM_OPERATIONS:
            try:
                body = json.dumps(without_none(self.result), separators=(",", ":"))
            except (TypeError, ValueError):  # bytes or datetimes: the shape walk encodes them
                return serialize(self, context)
            version = operation.service_model.metadata.get("jsonVersion", "1.0")
            return (operation.http.get("responseCode", 200),
                    {"Content-Type": f"application/x-amz-json-{version}"}, body)
        return serialize(self, context)

    DynamoResult.execute_result = execute_result
    _applied = True

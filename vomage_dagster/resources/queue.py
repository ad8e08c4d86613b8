"""SQS: the uploads queue and its dead-letter queue.

At-least-once delivery is handled by the caller (the SQS sensor): it deletes a message
only once the recording's run exists or the recording is final. Poison messages it
keeps are made visible again soon (`retry_visibility_s`) instead of after the queue's
full visibility timeout, so they reach the dead-letter queue after maxReceiveCount
receives within seconds, not quarter-hours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.resources.aws import client


@lru_cache(maxsize=32)
def _queue_url(sqs: Any, name: str) -> str:
    """A queue's URL never changes: one lookup per client and queue, not one per call."""
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    md5: str
    # String message attributes the platform sends (the trace context: `traceparent`).
    attributes: dict[str, str] = field(default_factory=dict)
    sent_at: float | None = None  # epoch seconds SQS received it (SentTimestamp)


TRACE_ATTRIBUTES = ("traceparent",)


class UploadQueue(ConfigurableResource):
    queue_name: str
    dead_letter_queue_name: str
    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    retry_visibility_s: int = 10
    # Long poll of a sensor tick's first receive: a message arriving while the tick
    # waits is handled at once instead of at the next tick, up to 5 s later.
    wait_s: int = 0

    @property
    def sqs(self) -> Any:
        return client("sqs", self.region_name, self.endpoint_url)

    def url(self, dead_letter: bool = False) -> str:
        name = self.dead_letter_queue_name if dead_letter else self.queue_name
        return _queue_url(self.sqs, name)

    def receive(self, max_messages: int = 10, wait_s: int = 0, dead_letter: bool = False,
                visibility_s: int | None = None) -> list[Message]:
        params: dict[str, Any] = {
            "QueueUrl": self.url(dead_letter),
            "MaxNumberOfMessages": min(max_messages, 10),
            "WaitTimeSeconds": wait_s,
            "AttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            "MessageAttributeNames": list(TRACE_ATTRIBUTES),
        }
        if visibility_s is not None:
            params["VisibilityTimeout"] = visibility_s
        resp = self.sqs.receive_message(**params)
        return [
            Message(m["MessageId"], m["ReceiptHandle"], m["Body"],
                    int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)), m["MD5OfBody"],
                    {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()
                     if v.get("DataType") == "String" and "StringValue" in v},
                    int(m["Attributes"]["SentTimestamp"]) / 1000 if "SentTimestamp" in m.get("Attributes", {})
                    else None)
            for m in resp.get("Messages", [])
        ]

    def delete(self, messages: list[Message], dead_letter: bool = False) -> None:
        url = self.url(dead_letter)
        for i in range(0, len(messages), 10):
            batch = messages[i:i + 10]
            resp = self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(batch)])
            if resp.get("Failed"):
                raise RuntimeError(f"SQS refused to delete: {resp['Failed']}")

    def release(self, messages: list[Message], dead_letter: bool = False,
                visibility_s: int | None = None) -> None:
        """Let kept messages come back after `visibility_s` (default `retry_visibility_s`)."""
        url = self.url(dead_letter)
        after = self.retry_visibility_s if visibility_s is None else visibility_s
        for i in range(0, len(messages), 10):
            batch = messages[i:i + 10]
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": after}
                for n, m in enumerate(batch)])

    def peek_dead_letters(self) -> list[Message]:
        """Every message in the dead-letter queue, left in place.

        Receiving hides a message for a while, so keep receiving until nothing new shows,
        then make them all visible again.
        """
        seen: dict[str, Message] = {}
        while batch := [m for m in self.receive(10, dead_letter=True, visibility_s=30)
                        if m.message_id not in seen]:
            for m in batch:
                seen[m.message_id] = m
        messages = list(seen.values())
        self.release(messages, dead_letter=True, visibility_s=0)
        return messages

    def delete_matching(self, predicate: Any, dead_letter: bool = False) -> int:
        """Delete every message whose body `predicate` accepts; the others become visible
        again at once. The count deleted."""
        seen: dict[str, Message] = {}
        doomed: list[Message] = []
        while batch := [m for m in self.receive(10, dead_letter=dead_letter, visibility_s=30)
                        if m.message_id not in seen]:
            for m in batch:
                seen[m.message_id] = m
                if predicate(m.body):
                    doomed.append(m)
        self.delete(doomed, dead_letter=dead_letter)
        self.release([m for m in seen.values() if m not in doomed], dead_letter=dead_letter, visibility_s=0)
        return len(doomed)

    def send(self, body: dict | str, dead_letter: bool = False, delay_s: int = 0,
             attributes: dict[str, str] | None = None) -> str:
        """`attributes`: string message attributes (the trace context the receiver continues)."""
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        extra = {"MessageAttributes": {k: {"DataType": "String", "StringValue": v}
                                       for k, v in attributes.items()}} if attributes else {}
        return self.sqs.send_message(QueueUrl=self.url(dead_letter), MessageBody=text,
                                     DelaySeconds=delay_s, **extra)["MessageId"]

    def send_many(self, bodies: list[dict], delay_s: int = 0) -> None:
        """Send in batches of 10; raises if SQS refused any (nothing is silently dropped)."""
        url = self.url()
        for i in range(0, len(bodies), 10):
            resp = self.sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps(b, ensure_ascii=False), "DelaySeconds": delay_s}
                for n, b in enumerate(bodies[i:i + 10])])
            if resp.get("Failed"):
                raise RuntimeError(f"SQS refused {len(resp['Failed'])} message(s): {resp['Failed'][0]}")

    def depth(self, dead_letter: bool = False) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url(dead_letter),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {"visible": int(attrs["ApproximateNumberOfMessages"]),
                "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"])}

"""S3: uploads in, processed outputs out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dagster import ConfigurableResource

from vomage_dagster.resources.aws import client

PRESIGNED_LINK_S = 7 * 24 * 3600  # SigV4's longest


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: dt.datetime


class ObjectStore(ConfigurableResource):
    """The recordings bucket."""

    bucket: str
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def s3(self) -> Any:
        return client("s3", self.region_name, self.endpoint_url)

    def get_bytes(self, key: str, if_match: str | None = None) -> bytes:
        """The object's bytes; with `if_match`, only if its ETag is still that one (else 412)."""
        extra = {"IfMatch": if_match} if if_match else {}
        return self.s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()

    def head(self, key: str) -> dict:
        return self.s3.head_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.head(key)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                  metadata: dict[str, str] | None = None) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                           Metadata=metadata or {})

    def put_json(self, key: str, obj: Any) -> None:
        body = json.dumps(obj, ensure_ascii=False, indent=1, default=str).encode("utf-8")
        self.put_bytes(key, body, "application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def get_json_or_none(self, key: str) -> Any:
        """The JSON at `key`, or None when there is no such object."""
        try:
            return self.get_json(key)
        except self.s3.exceptions.NoSuchKey:
            return None

    def get_bytes_or_none(self, key: str) -> bytes | None:
        """The object at `key`, or None when there is no such object."""
        try:
            return self.get_bytes(key)
        except self.s3.exceptions.NoSuchKey:
            return None

    def copy(self, source_key: str, dest_key: str, if_match: str | None = None) -> None:
        """Server-side copy; with `if_match`, only of the source with that ETag (else 412)."""
        extra = {"CopySourceIfMatch": if_match} if if_match else {}
        self.s3.copy_object(Bucket=self.bucket, Key=dest_key,
                            CopySource={"Bucket": self.bucket, "Key": source_key}, **extra)

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Objects under `prefix` in key order (after `start_after`, when given)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        extra = {"StartAfter": start_after} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"], obj["LastModified"])

    def delete_many(self, keys: list[str]) -> int:
        """Delete objects, 1,000 a call (S3's limit); the count asked for."""
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def browser_url(self, key: str) -> str:
        """An http link to the object that a person can open from the Dagster UI.

        On the local stack, a presigned GET on the stack's own endpoint (Dagster's home
        lives as long as the stack, `local/aws/stack.py`, so the link lives as long as its
        event). On AWS, the object's page in the S3 console: a presigned URL signed with
        a task role's session expires within hours, while the event log keeps the link.
        """
        endpoint = self.endpoint_url or self.s3.meta.endpoint_url
        if "amazonaws.com" not in endpoint:
            return self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=PRESIGNED_LINK_S)
        return (f"https://console.aws.amazon.com/s3/object/{self.bucket}"
                f"?region={self.region_name}&prefix={quote(key, safe='/')}")

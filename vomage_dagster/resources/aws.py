"""The one place boto3 clients are built.

`endpoint_url` is normally left unset: botocore then reads `AWS_ENDPOINT_URL` and the
per-service `AWS_ENDPOINT_URL_<SERVICE>` variables itself, which is how the same code
reaches moto and the local model server locally and AWS in production. Standard retry
mode gives exponential backoff with jitter on throttling and 5xx answers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=64)
def client(service: str, region: str, endpoint_url: str | None = None,
           max_attempts: int = 5, read_timeout: float = 120.0) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url or None, config=config
    )


@lru_cache(maxsize=16)
def dynamodb_table(name: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 Table with the same endpoint resolution and retries as `client`."""
    import boto3

    ddb = client("dynamodb", region, endpoint_url)
    resource = boto3.session.Session().resource(
        "dynamodb", region_name=region, endpoint_url=endpoint_url or None, config=ddb.meta.config
    )
    return resource.Table(name)

"""The one place boto3 clients are built.

`endpoint_url` is normally left unset: botocore then reads `AWS_ENDPOINT_URL` and the
per-service `AWS_ENDPOINT_URL_<SERVICE>` variables itself, which is how the same code
reaches moto and the local model server locally and AWS in production. Standard retry
mode gives exponential backoff with jitter on throttling and 5xx answers. Clients are
built once per process and shared (they are thread-safe); tables once per thread.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    return _client(service, region, endpoint_url or None)


def dynamodb_table(name: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 Table with the same endpoint resolution and retries as `client`.

    One per thread: boto3 resources, unlike clients, are not thread-safe, and a batch
    run works on several recordings at once.
    """
    return _table(name, region, endpoint_url or None, threading.get_ident())


def clear_clients() -> None:
    """Forget built clients (after the environment's endpoints changed, in tests)."""
    _client.cache_clear()
    _table.cache_clear()


@lru_cache(maxsize=64)
def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                    read_timeout=120)
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url,
                                          config=config)


@lru_cache(maxsize=64)
def _table(name: str, region: str, endpoint_url: str | None, _thread: int) -> Any:
    import boto3

    ddb = _client("dynamodb", region, endpoint_url)
    resource = boto3.session.Session().resource(
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=ddb.meta.config
    )
    return resource.Table(name)

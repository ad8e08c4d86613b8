"""The one place boto3 clients are built.

`endpoint_url` is normally left unset: botocore then reads `AWS_ENDPOINT_URL` and the
per-service `AWS_ENDPOINT_URL_<SERVICE>` variables itself, which is how the same code
reaches moto and the local model server locally and AWS in production. Standard retry
mode gives exponential backoff with jitter on throttling and 5xx answers.

Clients are built once per process from one boto3 session (so service models and
endpoint data are parsed once, not once per client: ≈0.2 s of CPU each) and shared, as
they are thread-safe. Building is serialised with a lock, since a batch run's worker
threads ask for the same clients at the same moment. DynamoDB `Table` resources are not
thread-safe: one per thread, from the same session.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_state: dict[str, Any] = {"session": None, "clients": {}, "generation": 0}
_local = threading.local()


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    key = (service, region, endpoint_url or None)
    found = _state["clients"].get(key)
    if found is not None:
        return found
    with _lock:
        found = _state["clients"].get(key)
        if found is None:
            found = _session().client(service, region_name=region, endpoint_url=endpoint_url or None,
                                      config=_config())
            _state["clients"][key] = found
        return found


def dynamodb_table(name: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 Table with the same endpoint resolution and retries as `client`, one per thread."""
    if getattr(_local, "generation", None) != _state["generation"]:
        _local.tables, _local.generation = {}, _state["generation"]
    key = (name, region, endpoint_url or None)
    table = _local.tables.get(key)
    if table is None:
        with _lock:
            resource = _session().resource("dynamodb", region_name=region,
                                           endpoint_url=endpoint_url or None, config=_config())
        table = _local.tables[key] = resource.Table(name)
    return table


REFUSED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError")


def refusal(exc: BaseException) -> str | None:
    """IAM's refusal in `exc` (the message names the caller, the action and the resource),
    or None: a service that lacks a grant says which call was refused and stops, since
    trying again cannot help."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in REFUSED_CODES:
        return f"{exc.operation_name}: {exc.response['Error'].get('Message') or exc.response['Error']['Code']}"
    return None


def clear_clients() -> None:
    """Forget built clients (after the environment's endpoints changed, in tests)."""
    with _lock:
        _state.update(session=None, clients={}, generation=_state["generation"] + 1)


def _session() -> Any:
    import boto3

    if _state["session"] is None:
        session = boto3.session.Session()
        _inject_throttling(session)
        _inject_latency(session)
        from vomage_dagster.telemetry.calls import instrument_botocore

        instrument_botocore(session)  # a span per call made inside a recording's trace
        _state["session"] = session
    return _state["session"]


def _inject_throttling(session: Any) -> None:
    """Chaos tests only (VOMAGE_CHAOS_DYNAMODB_THROTTLE, local): answer a fraction of
    DynamoDB calls with ThrottlingException before they leave, as a busy table would, so
    the retry path runs in every process of the stack."""
    from vomage_dagster.settings import load_settings

    fraction = load_settings().chaos_dynamodb_throttle
    if fraction <= 0:
        return
    import random

    from botocore.awsrequest import AWSResponse

    class _Body:
        def stream(self, **_: Any) -> Any:
            yield b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'

    def throttle(request: Any, **_: Any) -> Any:
        if random.random() >= fraction:
            return None
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException",
                                              "Content-Type": "application/x-amz-json-1.0"}, _Body())

    session.events.register("before-send.dynamodb", throttle)


# Service (botocore's event name) → the latency profile's round-trip figure.
ROUND_TRIPS = {"s3": "s3_round_trip_s", "sqs": "sqs_round_trip_s", "dynamodb": "dynamodb_round_trip_s",
               "eventbridge": "eventbridge_round_trip_s"}


def _inject_latency(session: Any) -> None:
    """Under a latency profile (local only, `vomage_dagster/resources/latency.py`): every call to S3, SQS,
    DynamoDB and EventBridge waits the profile's round trip before it leaves, so the
    chain pays what it would pay in an AWS region, in every process of the stack."""
    from vomage_dagster.resources import latency

    profile = latency.active()
    if profile is None:
        return
    import time

    for service, figure in ROUND_TRIPS.items():
        if figure not in profile.figures:
            continue

        def wait(figure: str = figure, **_: Any) -> None:
            time.sleep(profile.seconds(figure) or 0.0)

        session.events.register(f"before-send.{service}", wait)


def _config() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                  read_timeout=120)


# Bedrock's answers to a model that cannot be called: unknown id, retired, not granted to
# this account, or not callable on demand (a profile-only model called by its bare id).
_MODEL_UNAVAILABLE_CODES = {"ResourceNotFoundException", "AccessDeniedException"}
_MODEL_UNAVAILABLE_HINTS = ("model identifier", "end of its life", "model id", "inference profile",
                            "isn't supported", "is not supported", "not authorized", "access to the model")


def model_unavailable(exc: Exception, model_id: str) -> Any:
    """The final `model_unavailable` error for a Bedrock ClientError that means the model
    itself cannot be called; None for any other error (the caller re-raises it)."""
    from botocore.exceptions import ClientError

    from vomage_dagster.domain.errors import MODEL_UNAVAILABLE, ProcessingError

    if not isinstance(exc, ClientError):
        return None
    err = exc.response.get("Error", {})
    code, message = str(err.get("Code", "")), str(err.get("Message", ""))
    if code in _MODEL_UNAVAILABLE_CODES or (
            code == "ValidationException" and any(h in message.lower() for h in _MODEL_UNAVAILABLE_HINTS)):
        return ProcessingError(MODEL_UNAVAILABLE, f"model {model_id} cannot be called: {code}: "
                                                  f"{message[:200]} (check `vomage models check`)")
    return None

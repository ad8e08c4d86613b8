"""A span for every call a recording makes to AWS and Redis.

AWS: botocore's own events on the one boto3 session the platform builds clients from
(`resources/aws.py`), so S3, SQS, DynamoDB, EventBridge, Transcribe and Bedrock calls
are all covered, with the operation, the region and the HTTP status, nothing of the
request's content. Redis: the cache's methods (`resources/cache.py`). Either makes a span
only inside a recording's trace (`tracing.in_recording`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode

from vomage_dagster.telemetry import tracing

_SPAN = "vomage_span"
F = TypeVar("F", bound=Callable[..., Any])


def _before_call(model: Any = None, context: dict | None = None, **_: Any) -> None:
    if context is None or model is None or not tracing.in_recording():
        return
    service = model.service_model.service_id
    context[_SPAN] = tracing.tracer().start_span(
        f"{service}.{model.name}", kind=SpanKind.CLIENT,
        attributes={"rpc.system": "aws-api", "rpc.service": str(service), "rpc.method": model.name})


def _after_call(http_response: Any = None, parsed: dict | None = None, context: dict | None = None,
                **_: Any) -> None:
    span = (context or {}).pop(_SPAN, None)
    if span is None:
        return
    status = getattr(http_response, "status_code", None)
    if status is not None:
        span.set_attribute("http.response.status_code", int(status))
    code = ((parsed or {}).get("Error") or {}).get("Code")
    if code or (status is not None and int(status) >= 400):
        span.set_status(Status(StatusCode.ERROR, str(code or status)))
        if code:
            span.set_attribute("aws.error_code", str(code))
    span.end()


def _after_call_error(exception: BaseException | None = None, context: dict | None = None, **_: Any) -> None:
    span = (context or {}).pop(_SPAN, None)
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, type(exception).__name__ if exception else "error"))
        span.end()


def instrument_botocore(session: Any) -> None:
    """Spans for every call made with clients of `session` (a boto3 Session)."""
    events = session.events
    events.register("before-call", _before_call, unique_id="vomage-trace-before")
    events.register("after-call", _after_call, unique_id="vomage-trace-after")
    events.register("after-call-error", _after_call_error, unique_id="vomage-trace-error")


def redis_call(name: str) -> Callable[[F], F]:
    """A span around a cache method (`name`: the Redis command it stands for)."""
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not tracing.in_recording():
                return method(*args, **kwargs)
            with tracing.tracer().start_as_current_span(f"Redis.{name}", kind=SpanKind.CLIENT,
                                                        attributes={"db.system": "redis", "db.operation": name}):
                return method(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate

"""One trace per recording, in OpenTelemetry, exported over OTLP/HTTP.

Each process sets up its tracer provider lazily, the first time a recording's span is
made (after a fork too: the run workers' pool processes are forked). Spans leave the
process from a background thread, in batches, with a bounded export timeout and a
bounded queue: a collector that is down or slow costs a recording nothing (spans are
dropped once the queue is full), which `tests/test_tracing.py` measures.

Sampling is decided per recording from its trace id (`ids.sampled`): every process
decides alike. A recording the head sampler left out is still recorded in the process
that runs it (`RECORD_ONLY`), and `Keeper` exports those spans after all if the
recording fails or is slow: the tail decision the run process can make, since it sees
its recordings end. The ingest and live-view spans of such a recording are not kept
(their processes never learn how it ended).

Only spans inside a recording's trace are made: an AWS or Redis call outside any
(a sensor's poll, the ingest's receive) makes no span, so nothing floods the collector.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract as _extract
from opentelemetry.propagate import inject as _inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from vomage_dagster.settings import Settings, load_settings
from vomage_dagster.telemetry import ids

log = logging.getLogger(__name__)

__all__ = ["Status", "StatusCode", "trace"]  # re-exported: callers need not import OpenTelemetry

RECORDING_ID = "vomage.recording_id"
STAGE = "vomage.stage"
OUTCOME = "vomage.outcome"
ERROR_CODE = "vomage.error_code"
KEEP_TRACES = 256  # recorded-but-unsampled traces a process holds for a tail decision
KEEP_SPANS = 400  # spans per trace it holds
SCOPE = InstrumentationScope("vomage_dagster")

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "provider": None, "batch": None, "keeper": None, "settings": None}


class RecordingSampler(Sampler):
    """A recording's spans follow their parent's (ultimately the trace id's) decision;
    the ones not sampled are still recorded, for the tail decision."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        chosen = parent.trace_flags.sampled if parent.is_valid else ids.sampled(trace_id, _ratio())
        return SamplingResult(Decision.RECORD_AND_SAMPLE if chosen else Decision.RECORD_ONLY, attributes,
                              parent.trace_state if parent.is_valid else None)

    def get_description(self) -> str:
        return "RecordingSampler"


class Keeper(SpanProcessor):
    """Holds the spans of each recent trace this process made (bounded): the unsampled ones
    to export if their recording turns out failed or slow, all of them for the timeline the
    run shows in Dagster."""

    def __init__(self, exporter: SpanExporter):
        self.exporter = exporter
        self.traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self.lock = threading.Lock()

    def on_start(self, span, parent_context=None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        with self.lock:
            spans = self.traces.setdefault(span.context.trace_id, [])
            self.traces.move_to_end(span.context.trace_id)
            if len(spans) < KEEP_SPANS:
                spans.append(span)
            while len(self.traces) > KEEP_TRACES:
                self.traces.popitem(last=False)

    def spans_of(self, trace_id: int) -> list[ReadableSpan]:
        with self.lock:
            return list(self.traces.get(trace_id, []))

    def keep(self, trace_id: int) -> None:
        """Export the trace's unsampled spans after all (in the background: never the
        recording's time)."""
        with self.lock:
            late = [_as_sampled(s) for s in self.traces.get(trace_id, []) if not s.context.trace_flags.sampled]
        if late:
            threading.Thread(target=self._export, args=(late,), daemon=True, name="trace-keep").start()

    def _export(self, spans: list[ReadableSpan]) -> None:
        try:
            self.exporter.export(spans)
        except Exception as exc:  # noqa: BLE001 - a trace is never worth an error
            log.debug("kept spans not exported: %s", exc)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    ctx = span.context
    return ReadableSpan(
        name=span.name, context=SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, TraceFlags(TraceFlags.SAMPLED),
                                            ctx.trace_state),
        parent=span.parent, resource=span.resource, attributes=span.attributes, events=span.events,
        links=span.links, kind=span.kind, status=span.status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope)


def _ratio() -> float:
    settings = _state["settings"] or load_settings()
    return settings.trace_sample_ratio


def service_name() -> str:
    """`OTEL_SERVICE_NAME` (each service sets its own), else the program's name."""
    return os.environ.get("OTEL_SERVICE_NAME") or f"vomage-{os.path.basename(sys.argv[0] or 'python')}"


def _exporter(settings: Settings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from vomage_dagster.telemetry.export import signed_session

    session = signed_session(settings.region) if settings.traces_signed else None
    return OTLPSpanExporter(endpoint=settings.traces_endpoint, timeout=settings.trace_export_timeout_s,
                            session=session)


def provider() -> TracerProvider | None:
    """This process's provider, set up on first use; None when tracing is off (no endpoint)."""
    if _state["pid"] == os.getpid():
        return _state["provider"]
    with _lock:
        if _state["pid"] == os.getpid():
            return _state["provider"]
        settings = load_settings()
        _state["settings"] = settings
        if not settings.traces_endpoint:
            _state.update(pid=os.getpid(), provider=None, batch=None, keeper=None)
            return None
        if _state["provider"] is not None:  # forked: the parent's provider carries on in the child
            _state["pid"] = os.getpid()
            return _state["provider"]
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator

        exporter = _exporter(settings)
        made = TracerProvider(resource=Resource.create({"service.name": service_name()}),
                              sampler=RecordingSampler(), id_generator=AwsXRayIdGenerator())
        # A bounded queue and export: when the collector is down, spans are dropped, never waited for.
        batch = BatchSpanProcessor(exporter, max_queue_size=4096, schedule_delay_millis=500,
                                   max_export_batch_size=256,
                                   export_timeout_millis=int(settings.trace_export_timeout_s * 1000))
        keeper = Keeper(exporter)
        made.add_span_processor(batch)
        made.add_span_processor(keeper)
        _state.update(pid=os.getpid(), provider=made, batch=batch, keeper=keeper)
        return made


def tracer() -> trace.Tracer:
    found = provider()
    return found.get_tracer(SCOPE.name) if found else trace.NoOpTracer()


def enabled() -> bool:
    return provider() is not None


def recording_context(recording_id: str, carrier: Mapping[str, str] | None = None) -> otel_context.Context:
    """The context a recording's span starts from: what `carrier` propagated (a queue
    message's attributes, a run's tag), else the recording's root."""
    if carrier and carrier.get("traceparent"):
        found = _extract(dict(carrier))
        if trace.get_current_span(found).get_span_context().is_valid:
            return found
    trace_id = ids.trace_id(recording_id)
    flags = TraceFlags(TraceFlags.SAMPLED if ids.sampled(trace_id, _ratio()) else TraceFlags.DEFAULT)
    root = SpanContext(trace_id, ids.root_span_id(recording_id), is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(root))


@contextlib.contextmanager
def recording_span(name: str, recording_id: str, *, carrier: Mapping[str, str] | None = None,
                   parent: trace.Span | None = None, kind: SpanKind = SpanKind.INTERNAL, start_time: int | None = None,
                   attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span of the recording's trace, current for the block (`parent`: under that span)."""
    ctx = trace.set_span_in_context(parent) if parent is not None else \
        recording_context(recording_id, carrier)
    with tracer().start_as_current_span(name, context=ctx, kind=kind, start_time=start_time,
                                        attributes={RECORDING_ID: recording_id, **(attributes or {})},
                                        record_exception=False, set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            code = getattr(exc, "code", None) or (getattr(exc, "metadata", None) or {}).get("error_code")
            if isinstance(code, str):
                span.set_attribute(ERROR_CODE, code)
            elif code is not None and hasattr(code, "value"):
                span.set_attribute(ERROR_CODE, str(code.value))
            raise


def start_span(name: str, recording_id: str, *, carrier: Mapping[str, str] | None = None,
               start_time: int | None = None,
               attributes: Mapping[str, Any] | None = None) -> trace.Span:
    """A span of the recording's trace that the caller ends (it spans yields or threads)."""
    return tracer().start_span(name, context=recording_context(recording_id, carrier),
                               start_time=start_time, attributes={RECORDING_ID: recording_id, **(attributes or {})})


def in_recording() -> bool:
    """Whether the current context belongs to a recording's trace (AWS and Redis calls
    make spans only then)."""
    return trace.get_current_span().get_span_context().is_valid and enabled()


def carrier_of(span: trace.Span | None = None) -> dict[str, str]:
    """`traceparent` of `span` (default: the current one), to hand to another process."""
    found: dict[str, str] = {}
    ctx = trace.set_span_in_context(span) if span is not None else None
    _inject(found, context=ctx)
    return found


def finish_recording(recording_id: str, start: dt.datetime, end: dt.datetime, outcome: str, *,
                     error_code: str | None = None) -> None:
    """Write the recording's root span: its life from the upload to its final state. Made
    by whoever ends the recording; a failed or slow one is kept even if not sampled."""
    made = provider()
    if made is None:
        return
    settings = _state["settings"]
    trace_id = ids.trace_id(recording_id)
    slow = (end - start).total_seconds() > settings.trace_slow_s
    keep = ids.sampled(trace_id, settings.trace_sample_ratio) or outcome != "complete" or slow
    if not keep:
        return
    attributes = {RECORDING_ID: recording_id, OUTCOME: outcome, **({ERROR_CODE: error_code} if error_code else {})}
    root = ReadableSpan(
        name="recording", context=SpanContext(trace_id, ids.root_span_id(recording_id), False,
                                              TraceFlags(TraceFlags.SAMPLED)),
        parent=None, resource=made.resource, attributes=attributes, kind=SpanKind.SERVER,
        status=Status(StatusCode.OK if outcome == "complete" else StatusCode.ERROR, error_code),
        start_time=_ns(start), end_time=_ns(end), instrumentation_scope=SCOPE)
    _state["batch"].on_end(root)
    _state["keeper"].on_end(root)
    _state["keeper"].keep(trace_id)


def spans_of(recording_id: str) -> list[ReadableSpan]:
    """The spans of the recording this process made recently (the run's timeline)."""
    return _state["keeper"].spans_of(ids.trace_id(recording_id)) if enabled() else []


def flush(timeout_s: float = 2.0) -> None:
    made = provider()
    if made is not None:
        made.force_flush(int(timeout_s * 1000))


def _ns(when: dt.datetime) -> int:
    return int(when.timestamp() * 1e9)

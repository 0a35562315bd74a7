"""OpenTelemetry tracing: W3C trace context across HTTP and Kafka, spans, an optional OTLP exporter.

The API is always there (a no-op until configured). `configure(endpoint)` installs the SDK with an
OTLP/HTTP exporter when `otel_exporter_otlp_endpoint` is set and `opentelemetry-sdk` is installed
(extra `tracing`); otherwise nothing is exported, but the trace context still travels: the intake
starts a trace (or continues the SIEM's), Kafka headers carry it, and every timeline entry the alert
causes records its id (`STAMP`, read by `Recorder.append`). docs/observability.md has the span tree.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util._once import Once

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("responder")
_PROPAGATOR = TraceContextTextMapPropagator()
_configured = False

STAMP: ContextVar[Mapping[str, str] | None] = ContextVar("responder_trace_stamp", default=None)
"""The trace fields (`trace_id`, and `event_trace_id` when the work runs in a later trace) that every timeline
entry appended in this context carries; set per record by the pipeline and per decision by the service."""


def configure(endpoint: str | None, service: str) -> bool:
    """Export spans to `endpoint` (OTLP/HTTP); False when off or the SDK is not installed."""
    global _configured
    if not endpoint or _configured:
        return _configured
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing_sdk_missing", hint="pip install 'incident-responder[tracing]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing_configured", service=service)
    return True


def reset() -> None:
    """Back to no tracer provider, as at start, so that a later `configure` (or `set_tracer_provider`) installs one
    again: for tests, which share the process's provider (the API sets it once per process, and one left installed
    sends every later service through the per-record traced path)."""
    global _configured, tracer
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    tracer = trace.get_tracer("responder")  # a proxy keeps the first provider's tracer once it has used it
    _configured = False


_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def active() -> bool:
    """Whether an SDK tracer provider is installed (spans are recorded); otherwise spans are skipped.

    Called per record and stage: without a provider set, `get_tracer_provider()` reads the environment on
    every call, so the unset case is answered from the module's own (set-once) global.
    """
    if getattr(trace, "_TRACER_PROVIDER", None) is None and not _PROVIDER_FROM_ENV:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextlib.contextmanager
def span(name: str, parent: Context | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
         attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span | None]:
    """A current span when tracing is active; nothing at all (not even a no-op span) when it is off.

    An exception leaving the block marks the span as failed with `error.type` = its `code` (the AWS error
    code of an actuation error) or its class name.
    """
    if not active():
        yield None
        return
    with tracer.start_as_current_span(name, context=parent if parent is not None else _stamp_parent(), kind=kind,
                                      attributes=span_attributes(**(attributes or {}))) as current:
        try:
            yield current
        except Exception as exc:
            current.set_attribute("error.type", str(getattr(exc, "code", None) or exc.__class__.__name__))
            raise


def _stamp_parent() -> Context | None:
    """With no current span, the timeline stamp's trace (e.g. a timeout releasing a parked step) as the parent,
    so the spans join the trace the entries name instead of starting a new one."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    trace_id = current_stamp("trace_id")
    if not trace_id:
        return None
    remote = trace.SpanContext(int(trace_id, 16), int(secrets.token_hex(8), 16), is_remote=True,
                               trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))


def extract(headers: Mapping[str, str] | Iterable[tuple[str, bytes]]) -> Context:
    """The remote trace context in HTTP headers (a mapping) or Kafka headers (name, bytes pairs)."""
    carrier = dict(headers) if isinstance(headers, Mapping) else {
        k: v.decode(errors="replace") for k, v in headers if k in ("traceparent", "tracestate")}
    return _PROPAGATOR.extract(carrier)


def outgoing(incoming: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers carrying the current trace context (tracing off: the `incoming` one); else a new trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=None if active() or incoming is None else extract(incoming))
    if "traceparent" not in carrier:
        carrier = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
    return [(k, v.encode()) for k, v in carrier.items()]


def propagation() -> list[tuple[str, str]]:
    """W3C headers for a message responder sends on an alert's behalf (notifications, approval requests).

    Tracing on: the current span's context. Off: the alert's trace id from the timeline stamp under a fresh
    parent id, so the receiver still joins the alert's trace. Neither: no headers.
    """
    if active():
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        if carrier:
            return list(carrier.items())
    trace_id = current_stamp("trace_id")
    return [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")] if trace_id else []


def trace_id_of(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The 32-hex trace id in a `traceparent` header, if valid."""
    context = trace.get_current_span(extract(headers)).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def span_attributes(**values: Any) -> dict[str, Any]:
    """Attributes without None values (OpenTelemetry refuses them)."""
    return {k: v for k, v in values.items() if v is not None}


def current_trace_id() -> str | None:
    """The 32-hex trace id of the current span (None when tracing is off or no span is current)."""
    if not active():
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class _Stamped:
    """`stamped`'s context manager: a plain class, a third of a generator-based one's cost (once per record)."""

    __slots__ = ("fields", "token")

    def __init__(self, fields: Mapping[str, str] | None) -> None:
        self.fields = fields

    def __enter__(self) -> None:
        self.token = STAMP.set(self.fields)

    def __exit__(self, *exc: object) -> None:
        STAMP.reset(self.token)


def stamp_of(trace_id: str | None, event_trace_id: str | None = None) -> Mapping[str, str] | None:
    """The `STAMP` that makes entries carry `trace_id` (and `event_trace_id`, the alert's, when it differs)."""
    fields = {"trace_id": trace_id} if trace_id else {}
    if event_trace_id and event_trace_id != trace_id:
        fields["event_trace_id"] = event_trace_id
    return fields or None


def stamped(trace_id: str | None, event_trace_id: str | None = None) -> contextlib.AbstractContextManager[None]:
    """Timeline entries appended inside carry `trace_id` (and `event_trace_id`, the alert's, when it differs)."""
    return _Stamped(stamp_of(trace_id, event_trace_id))


@contextlib.contextmanager
def traced(name: str, headers: Iterable[tuple[str, bytes]]) -> Iterator[str | None]:
    """A consumer span continuing the trace in Kafka `headers` (tracing on), and the timeline stamp with its id."""
    headers = list(headers)
    parent = extract(headers) if any(k == "traceparent" for k, _ in headers) else None
    with span(name, parent, trace.SpanKind.CONSUMER):
        trace_id = current_trace_id() or (trace_id_of(headers) if parent is not None else None)
        tokens = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        try:
            with stamped(trace_id):
                yield trace_id
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


def current_stamp(field: str) -> str | None:
    """A field of this context's timeline stamp (`trace_id`, `event_trace_id`)."""
    fields = STAMP.get()
    return fields.get(field) if fields else None


def event_trace() -> str | None:
    """The trace of the alert behind the work in this context (what a parked step keeps for its decision)."""
    fields = STAMP.get()
    return (fields.get("event_trace_id") or fields.get("trace_id")) if fields else None


def ended(current: trace.Span | None, status: str, error: str | None = None) -> None:
    """Close out a step span's outcome: `responder.status`, and an error status unless it is `ok`."""
    if current is None:
        return
    current.set_attribute("responder.status", status)
    if status != "ok":
        current.set_status(trace.Status(trace.StatusCode.ERROR, (error or status)[:200]))

"""OpenTelemetry tracing: W3C trace context across HTTP and Kafka, spans, an optional OTLP exporter.

The API is always there (a no-op until configured). `configure(endpoint)` installs the SDK with an
OTLP/HTTP exporter when `otel_exporter_otlp_endpoint` is set and `opentelemetry-sdk` is installed
(extra `tracing`); otherwise nothing is exported, but the trace context still travels: the intake
starts a trace (or continues the SIEM's), Kafka headers carry it, and the timeline records its id.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from responder.models.timeline import EntryKind, TimelineEntry

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("responder")
_PROPAGATOR = TraceContextTextMapPropagator()
_configured = False


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
         attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """A current span when tracing is active; nothing at all (not even a no-op span) when it is off."""
    if not active():
        yield
        return
    with tracer.start_as_current_span(name, context=parent, kind=kind,
                                      attributes=span_attributes(**(attributes or {}))):
        yield


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


def trace_id_of(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The 32-hex trace id in a `traceparent` header, if valid."""
    context = trace.get_current_span(extract(headers)).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def span_attributes(**values: Any) -> dict[str, Any]:
    """Attributes without None values (OpenTelemetry refuses them)."""
    return {k: v for k, v in values.items() if v is not None}


class StepSpans:
    """A Recorder observer: one span per step, from its durable intent's append to its result's.

    Started in the appending task, so its parent is the record's span; the AWS calls a step makes are
    spans of their own (`aws.<service>.<Operation>`) under the same record span.
    """

    def __init__(self) -> None:
        self._open: dict[str, trace.Span] = {}

    def observe(self, entry: TimelineEntry) -> None:
        """Open a span at `step.intent`, close it at the matching `step.result`."""
        if entry.kind != EntryKind.STEP_INTENT and entry.kind != EntryKind.STEP_RESULT:
            return
        body = entry.body
        key = str(body.get("key", ""))
        if entry.kind == EntryKind.STEP_INTENT and key:
            self._open[key] = tracer.start_span(f"step {body.get('step')}", attributes=span_attributes(
                **{"responder.actuator": body.get("actuator"), "responder.incident": entry.incident,
                   "responder.target": body.get("target")}))
        elif entry.kind == EntryKind.STEP_RESULT and key in self._open:
            span = self._open.pop(key)
            status = str(body.get("status"))
            span.set_attribute("responder.status", status)
            if status != "ok":
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(body.get("error", status))[:200]))
            span.end()

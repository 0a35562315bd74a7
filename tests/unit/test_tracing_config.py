"""Tracing is off by default and exports over OTLP only when an endpoint is set (own process: global state)."""

from __future__ import annotations

import sys

from responder.sandbox import lifeline
from responder.tracing import outgoing, trace_id_of

SCRIPT = """
from opentelemetry import trace
from responder import tracing
print(tracing.configure({endpoint!r}, "test"), type(trace.get_tracer_provider()).__name__)
"""


def _configure(endpoint: str | None) -> str:
    return lifeline.run([sys.executable, "-c", SCRIPT.format(endpoint=endpoint)], capture_output=True, text=True,
                        check=True, timeout=60).stdout.strip().splitlines()[-1]


def test_tracing_is_off_by_default() -> None:
    """Without an endpoint nothing is installed: the API stays a no-op (ProxyTracerProvider)."""
    assert _configure(None) == "False ProxyTracerProvider"


def test_an_endpoint_installs_the_sdk_with_otlp() -> None:
    """With an endpoint the SDK TracerProvider is installed (the exporter sends in the background)."""
    assert _configure("http://127.0.0.1:9/v1/traces") == "True TracerProvider"


def test_without_a_trace_a_new_one_starts() -> None:
    """With no current span, the outgoing headers carry a fresh, valid trace id."""
    headers = outgoing()
    assert trace_id_of(headers) is not None
    assert trace_id_of(headers) != trace_id_of(outgoing())

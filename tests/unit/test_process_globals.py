"""Tests share one process: a tracer provider, log set-up or collector tuning a test leaves is gone for the next."""

from __future__ import annotations

import gc
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from responder import collector, log, tracing


def test_a_test_may_install_a_tracer_provider_and_configure_logging() -> None:
    """A test installs the SDK provider and configures logging at warning, as a tracing or a CLI test does."""
    trace.set_tracer_provider(TracerProvider())
    log.configure("json", "warning")
    with tracing.span("first") as current:
        assert current is not None
    assert not log.enabled(logging.INFO)


def test_the_next_test_starts_with_no_provider_and_logging_unconfigured() -> None:
    """After it, spans are off, info logs pass, and the root logger has no handler of ours."""
    assert not tracing.active()
    assert log.enabled(logging.INFO)
    assert [type(h).__name__ for h in logging.getLogger().handlers if type(h).__module__ == log.__name__] == []


def test_a_provider_can_be_installed_again_after_another_test_had_one() -> None:
    """`set_tracer_provider` is not refused (the API sets it once per process): spans reach this test's provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with tracing.span("probe"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["probe"]


def test_a_test_may_start_a_service_that_tunes_the_collector() -> None:
    """A service's start freezes what is alive and raises generation 0's threshold (collector.tune), process-wide."""
    collector.tune(10_000)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == collector.thresholds(10_000)


def test_the_next_test_starts_with_the_collector_untuned() -> None:
    """After it, nothing is frozen out of the collector and the thresholds are the interpreter's again."""
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() != collector.thresholds(10_000)
    assert gc.isenabled()

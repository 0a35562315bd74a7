"""A key deactivation that fails in moto, in a runbook without on_failure: the default escalation tells on-call, and
without one the last resort is recorded and counted."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.catalog.defaults import with_default_escalation
from responder.engine import Engine
from responder.metrics import Metrics, TimelineMetrics
from responder.models import RawRecord
from responder.pipeline import Pipeline
from tests.integration.example_kit import EXAMPLES, ROOT, RecordingPublisher, example_engine

pytestmark = pytest.mark.integration
RUNBOOK = "iam-credential-compromise"
PAGE = [{"id": "page", "actuator": "notify.kafka.publish_message",
         "with": {"topic": "responder.pages", "title": "${failure.step} failed",
                  "fields": {"on": "${failure.target}"}}}]


async def _failed_without_on_failure(aws: Any, default: list[dict[str, Any]]) -> tuple[Engine, RecordingPublisher,
                                                                                          Metrics]:
    """The shipped runbook, its on_failure removed (then given `default`), run on its example whose user moto lacks."""
    [rb] = [b for b in load_runbooks(ROOT / "runbooks", registry) if b.id == RUNBOOK]
    books = with_default_escalation([rb.model_copy(update={"on_failure": []})], default, registry)
    engine, publisher = example_engine(aws)
    metrics = Metrics()
    engine.recorder.sinks.append(TimelineMetrics(metrics, runbook_of=lambda i: engine.state.incidents.by_id[i].runbook))
    raw = (EXAMPLES / f"{RUNBOOK}.json").read_bytes()
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    return engine, publisher, metrics


async def test_a_failed_deactivation_without_on_failure_is_a_counted_missed_escalation(aws):
    """No on_failure and no default: escalation.missed is recorded and responder_escalation_failures_total counts it."""
    engine, publisher, metrics = await _failed_without_on_failure(aws, [])
    [missed] = [e.body for e in engine.recorder.entries() if e.kind == "escalation.missed"]
    assert (missed["step"], missed["status"], missed["reason"]) == ("deactivate-key", "failed", "no_on_failure")
    assert metrics.value("responder_escalation_failures_total", runbook=RUNBOOK,
                         actuator="aws.iam.deactivate_access_key") == 1
    assert publisher.sent == []


async def test_a_failed_deactivation_without_on_failure_runs_the_default_escalation(aws):
    """With default_on_failure, the failure is published to on-call and nothing is missed."""
    engine, publisher, metrics = await _failed_without_on_failure(aws, PAGE)
    [(topic, body)] = publisher.sent
    assert (topic, body["title"]) == ("responder.pages", "deactivate-key failed")
    assert [e for e in engine.recorder.entries() if e.kind == "escalation.missed"] == []
    assert metrics.value("responder_escalation_failures_total", runbook=RUNBOOK,
                         actuator="aws.iam.deactivate_access_key") == 0

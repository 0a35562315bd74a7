"""One trace from the SIEM's HTTP request to the AWS call: intake, Kafka headers, pipeline, step, timeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from responder import tracing
from responder.cli.intake import build
from responder.intake.server import serving
from responder.models.timeline import TimelineEntry
from responder.service import Service
from responder.timeline.evidence import incident_entries
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.kit import DEACTIVATE_STEPS, KEY, make_kit

pytestmark = pytest.mark.integration
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(name="spans")
def _spans() -> Iterator[InMemorySpanExporter]:
    """An SDK provider with an in-memory exporter, installed for this test (tests/conftest.py removes it after)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


async def test_siem_trace_continues_to_the_aws_call(spans, kafka_bootstrap, aws, topics, unique, tmp_path,
                                                    runbooks_dir):
    """The SIEM's traceparent: intake → record → step → AWS call spans, and its id on every entry of the incident."""
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    spans.clear()
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             intake_topic=topics["alerts"], intake_sources={"eb": {"auth": "open"}})
    service = Service(settings)
    async with running(service), serving(build(settings)) as port, httpx.AsyncClient() as http:
        headers = {"content-type": "application/json", "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
        answer = await http.post(f"http://127.0.0.1:{port}/v1/events/eb",
                                 content=envelope_bytes(guardduty_finding(key)), headers=headers)
        assert answer.status_code == 202
        await wait_for(lambda: bool(service.engine.state.results()))
    assert answer.json()["trace_id"] == TRACE
    mine = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE]
    assert {"intake.request", "intake.decode", "intake.produce", "responder.record", "decode", "match",
            "step deactivate-key", "aws.iam.update_access_key"} <= {s.name for s in mine}
    by_id = {s.context.span_id: s for s in mine}
    [update] = [s for s in mine if s.name == "aws.iam.update_access_key"]
    assert update.parent is not None
    step = by_id[update.parent.span_id]  # the AWS call is a child of its step's span ...
    assert (step.name, step.attributes["responder.status"]) == ("step deactivate-key", "ok")
    assert step.parent is not None
    assert by_id[step.parent.span_id].name == "responder.record"  # ... which is a child of the record's
    aws_parents = {by_id[s.parent.span_id].name for s in mine if s.name.startswith("aws.") and s.parent}
    assert aws_parents
    assert all(name.startswith("step ") for name in aws_parents)
    lines = (tmp_path / "t.jsonl").read_bytes().splitlines()
    entries = [TimelineEntry.model_validate(orjson.loads(line)) for line in lines]
    [incident] = {e.incident for e in entries if e.kind == "incident.opened"}
    chain = incident_entries(entries, str(incident))
    assert {"event.received", "event.matched", "incident.opened", "step.intent", "step.result"} \
        <= {e.kind for e in chain}
    assert {e.kind: e.body.get("trace_id") for e in chain if e.body.get("trace_id") != TRACE} == {}


async def test_each_retry_is_a_span_under_its_step_with_attempt_and_error_code(spans, tmp_path):
    """Throttled calls: the first attempt's AWS calls and one `retry` span per retry sit under the step span."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS})
    traced_iam = Traced(kit.iam)
    kit.engine.context = replace(kit.engine.context, aws=traced_iam)
    spans.clear()
    kit.iam.throttle_next = 3  # observe(), the first apply, and the check before the second attempt
    with tracing.span("responder.record"):
        await kit.send()
    assert kit.iam.keys[KEY]["Status"] == "Inactive"
    done = spans.get_finished_spans()
    [step] = [s for s in done if s.name == "step deactivate"]
    under = sorted((s for s in done if s.parent is not None and s.parent.span_id == step.context.span_id),
                   key=lambda s: s.start_time or 0)
    retries = [s for s in under if s.name == "retry"]
    assert [s.attributes["responder.attempt"] for s in retries] == [2, 3]
    assert retries[0].attributes["error.type"] == "Throttling"
    assert "error.type" not in retries[1].attributes
    first = [s for s in under if s.name.startswith("aws.") and (s.start_time or 0) < (retries[0].start_time or 0)]
    assert [s.attributes["error.type"] for s in first] == ["Throttling", "Throttling"]  # observe and first apply
    assert [e.attributes["responder.attempt"] for e in step.events if e.name == "attempt_failed"] == [1]
    in_retry = [s.name for s in done if s.parent is not None and s.parent.span_id == retries[1].context.span_id]
    assert "aws.iam.update_access_key" in in_retry


class Traced:
    """The fake IAM with a client span per call, as `AwsSession.call` makes for the real one."""

    def __init__(self, iam: FakeIam) -> None:
        self.iam = iam

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One traced call."""
        with tracing.span(f"aws.{service}.{operation}", None, trace.SpanKind.CLIENT):
            return await self.iam.call(service, operation, **kwargs)

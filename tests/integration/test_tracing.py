"""One trace from the SIEM's HTTP request to the AWS call: intake, Kafka headers, pipeline, step, timeline."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from responder.cli.intake import build
from responder.intake.server import serving
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for

pytestmark = pytest.mark.integration
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(name="spans", scope="module")
def _spans() -> Iterator[InMemorySpanExporter]:
    """An SDK provider with an in-memory exporter (the global provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    exporter.clear()
    provider.shutdown()  # later spans in this process are dropped, not kept


async def test_siem_trace_continues_to_the_aws_call(spans, kafka_bootstrap, aws, topics, unique, tmp_path,
                                                    runbooks_dir):
    """The SIEM's traceparent is the parent of intake, record, decode, match, step and AWS spans; on the timeline."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        pytest.skip("another test set the global tracer provider first")
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
    names = {s.name for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE}
    assert {"intake.request", "intake.decode", "intake.produce", "responder.record", "decode", "match",
            "step deactivate-key", "aws.iam.update_access_key"} <= names
    received = [orjson.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()
                if '"event.received"' in line]
    assert [e["body"]["trace_id"] for e in received] == [TRACE]

"""An alert posted over HTTP to the intake reaches the service through the real broker and acts in moto."""

from __future__ import annotations

import httpx
import orjson
import pytest

from responder.cli.intake import build
from responder.intake.server import serving
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.intake_kit import CORPUS, CORPUS_PAYLOADS
from tests.integration.harness import make_settings, read_all, running, wait_for

pytestmark = pytest.mark.integration

TOKEN = "eventbridge-api-destination-token"
SIGNING = "intake-signing-secret-for-kafka"


async def test_alert_posted_over_http_deactivates_key(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """POST → 202 after the broker's ack → signed record accepted by a require_signature service → key Inactive."""
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    settings = make_settings(
        kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
        event_signing_keys={"intake": SIGNING}, require_signature=["guardduty"], intake_topic=topics["alerts"],
        intake_signing_key_id="intake", intake_sources={"eventbridge": {"auth": "bearer", "keys": {"t1": TOKEN},
                                                                        "format": "guardduty"}},
    )
    service = Service(settings)
    body = envelope_bytes(guardduty_finding(key))
    async with running(service), serving(build(settings)) as port, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/v1/events/eventbridge"
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        answer = await http.post(url, content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.json()["produced"] == 1
        again = await http.post(url, content=body, headers=headers)
        assert (again.json()["produced"], again.json()["duplicates"]) == (0, 1)
        await wait_for(lambda: bool(service.engine.state.results()))
        metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    listed = await aws.call("iam", "list_access_keys", UserName="ml-training")
    assert [k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key] == ["Inactive"]
    assert service.metrics.value("responder_records_authenticated_total", key_id="intake") == 1
    assert 'responder_intake_records_produced_total{source="eventbridge"} 1.0' in metrics
    timeline = (tmp_path / "t.jsonl").read_text()
    received = [orjson.loads(line) for line in timeline.splitlines() if '"event.received"' in line]
    assert [e["body"]["trace_id"] for e in received] == [answer.json()["trace_id"]]
    for secret in (TOKEN, SIGNING):
        assert secret not in timeline


async def test_a_guardduty_finding_posted_as_splunk_never_reaches_the_topic(kafka_bootstrap, aws, topics, unique,
                                                                             tmp_path, runbooks_dir):
    """A GuardDuty finding dressed as Splunk is 422 format-mismatch: never on the topic, its key stays Active."""
    # the topic's only record is the genuine Splunk alert posted after it
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    settings = make_settings(
        kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
        event_signing_keys={"intake": SIGNING}, require_signature=["guardduty"], intake_topic=topics["alerts"],
        intake_signing_key_id="intake", intake_sources={"splunk": {"auth": "url-token", "keys": {"t1": TOKEN},
                                                                   "format": "splunk"}},
    )
    hybrid = {**orjson.loads(envelope_bytes(guardduty_finding(key))), "sid": "s-1", "search_name": "harmless"}
    genuine = (CORPUS / CORPUS_PAYLOADS["splunk"]).read_bytes()
    service = Service(settings)
    async with running(service), serving(build(settings)) as port, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/v1/events/splunk?token={TOKEN}"
        headers = {"content-type": "application/json"}
        refused = await http.post(url, content=orjson.dumps(hybrid), headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["reason"] == "format-mismatch"
        accepted = await http.post(url, content=genuine, headers=headers)
        assert accepted.status_code == 202, accepted.text
        await wait_for(lambda: service.pipeline.counters.records >= 1)
        metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    [record] = await read_all(kafka_bootstrap, topics["alerts"], expect=1)
    assert record.value == genuine
    assert await _records_on(kafka_bootstrap, topics["alerts"]) == 1  # acks=all: the refused one was never sent
    assert 'responder_intake_rejected_total{reason="format-mismatch",source="splunk"} 1.0' in metrics
    assert service.pipeline.counters.records == 1
    assert service.metrics.value("responder_events_total", source="splunk") == 1
    assert service.metrics.value("responder_records_authenticated_total", key_id="intake") == 1
    listed = await aws.call("iam", "list_access_keys", UserName="ml-training")
    assert [k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key] == ["Active"]


async def _records_on(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (a fresh topic: the sum of its partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]  # the `topics` fixture's
        consumer.assign(partitions)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_intake_answers_503_when_kafka_is_unreachable(tmp_path):
    """With no broker listening, a POST is 503 with Retry-After and /readyz is 503."""
    from tests.intake_kit import intake_settings

    settings = intake_settings(kafka_bootstrap="127.0.0.1:9", intake_send_timeout_s=1.0)
    async with serving(build(settings)) as port, httpx.AsyncClient() as http:
        answer = await http.post(f"http://127.0.0.1:{port}/v1/events/open", content=b'{"sid": "1", "search_name": "x"}',
                                 headers={"content-type": "application/json"})
        ready = await http.get(f"http://127.0.0.1:{port}/readyz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert answer.json()["reason"] == "broker-unavailable"
    assert ready.status_code == 503


async def test_acked_producer_sends_and_reports_health(kafka_bootstrap, topics):
    """The producer is connected after start, returns the record's partition and offset, and is healthy."""
    from responder.ingest.producer import AckedProducer

    producer = AckedProducer(kafka_bootstrap, send_timeout=10)
    try:
        await producer.start()
        partition, offset = await producer.send(topics["alerts"], b"{}", key=b"k")
        assert producer.connected
        assert partition in (0, 1, 2)
        assert offset >= 0
        await producer.start()  # already started and healthy: a no-op
    finally:
        await producer.stop()
    assert not producer.connected

"""Producers across a broker that stops answering for longer than aiokafka waits for a batch (the embedded broker's
process SIGSTOPped, its data kept): a fleet changelog write and a dead-letter copy are sent again until it answers,
and land whole (responder/ingest/clients.py `resending`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.ingest.admin import ensure_topics
from responder.ingest.changelog import Changelog, ensure_changelog
from responder.ingest.dlqsend import send_deadletter
from responder.models.event import RawRecord
from tests.faults.brokers import FAST, stopped_for, topic_records

pytestmark = pytest.mark.integration

LONG_OUTAGE_S = 10.0  # longer than dlqsend's three tries used to span (each up to 2-3 s here)


async def test_a_changelog_write_during_an_outage_lands_once_the_broker_answers(broker, unique):
    """A changelog slice written during a broker outage past the request timeout is resent and read by the restore."""
    topic = f"changelog-{unique}"
    await ensure_changelog(broker.bootstrap, topic, 1)
    changelog = Changelog(broker.bootstrap, topic, options=FAST)
    await changelog.start()
    at = datetime(2026, 12, 5, tzinfo=UTC)
    try:
        await changelog.write(0, {"i0": EngineSnapshot(incidents=[Incident("i0", "rb", "g0", at, at)])})
        with capture_logs() as logs:
            outage = asyncio.create_task(stopped_for(broker))
            await asyncio.sleep(0.2)
            await changelog.write(0, {"i1": EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at, events=3)])})
            await outage
        assert "kafka_send_retried" in [e["event"] for e in logs]
        restored = {s.incidents[0].id: s.incidents[0].events for s in await changelog.read(0)}
        assert restored == {"i0": 1, "i1": 3}
    finally:
        await changelog.stop()


async def test_a_dead_letter_during_an_outage_is_the_full_copy_once_the_broker_answers(broker, unique):
    """A poison record dead-lettered in a long broker outage lands as its full copy once the broker answers."""
    topic = f"dlq-{unique}"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", **FAST)
    await producer.start()
    record = RawRecord(topic="alerts", partition=0, offset=9, key=b"k", value=b"{not json", headers=(("h", b"v"),))
    try:
        await producer.send_and_wait(topic, b"warm-up")
        outage = asyncio.create_task(stopped_for(broker, LONG_OUTAGE_S))
        await asyncio.sleep(0.2)
        await send_deadletter(producer, topic, record, "not_json", "bad", 1_000_000, deadline=30.0)
        await outage
    finally:
        await producer.stop()
    letters = [m for m in await topic_records(broker.bootstrap, topic) if m.value != b"warm-up"]
    assert letters  # a copy sent before the outage ended may be there twice (docs/faults.md)
    assert [(m.value, dict(m.headers).get("h")) for m in letters] == [(b"{not json", b"v")] * len(letters)

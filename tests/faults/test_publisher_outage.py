"""Producers of s25 across a broker that stops answering (the embedded broker SIGSTOPped, its data kept): a
`deadletter replay` sends again until it answers, and the service's publisher gives up at its deadline instead of
holding a lane (responder/ingest/deadletter.py, responder/ingest/approvals.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from responder.errors import BrokerUnavailable
from responder.ingest import deadletter
from responder.ingest.admin import ensure_topics
from responder.ingest.approvals import KafkaPublisher
from responder.ingest.clients import publish
from tests.faults.brokers import FAST, OUTAGE_S, stopped_for, topic_records

pytestmark = pytest.mark.integration


async def test_a_replay_during_an_outage_publishes_every_record_once_the_broker_answers(broker, unique,
                                                                                      monkeypatch):
    """A replay during a broker outage resends its first record, and every dead letter reaches its topic."""
    dlq, target = f"dlq-{unique}", f"retry-{unique}"
    await ensure_topics(broker.bootstrap, [dlq, target], partitions=1)
    headers = [("dlq.reason", b"not_json"), ("dlq.topic", target.encode())]
    await publish(broker.bootstrap, dlq, [b"a", b"b"], headers=headers)
    outages: list[asyncio.Task[None]] = []

    class Stopping(AIOKafkaProducer):
        """The replay's producer: its first send meets a stopped broker."""

        async def send_and_wait(self, *args: Any, **kwargs: Any) -> Any:
            if not outages:
                outages.append(asyncio.create_task(stopped_for(broker, OUTAGE_S)))
                await asyncio.sleep(0.2)
            return await super().send_and_wait(*args, **kwargs)

    monkeypatch.setattr(deadletter, "AIOKafkaProducer", Stopping)
    with capture_logs() as logs:
        result = await deadletter.replay_deadletters(broker.bootstrap, dlq, idle_seconds=1.5, options=FAST)
        await outages[0]
    assert (result.replayed, result.failed) == (2, None)
    assert "kafka_send_retried" in [e["event"] for e in logs]
    assert {m.value for m in await topic_records(broker.bootstrap, target)} == {b"a", b"b"}  # a resend: twice


async def test_a_publication_on_a_stopped_broker_gives_up_at_the_publishers_deadline(broker, unique):
    """A publication while the broker is stopped raises BrokerUnavailable at the publisher's deadline, not later."""
    topic = f"requests-{unique}"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    publisher = KafkaPublisher(broker.bootstrap, options=FAST)
    publisher.deadline = 2.0
    await publisher.start()
    try:
        await publisher.publish(topic, b"k", b"warm-up")
        outage = asyncio.create_task(stopped_for(broker, 6.0))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await asyncio.wait_for(publisher.publish(topic, b"k", b"{}"), 5.0)
        assert time.monotonic() - began < 3.0
        await outage
    finally:
        await publisher.stop()

"""The broker itself refuses a fleet member expelled while it was silent, and its membership lease ends on that answer:
on the embedded Tansu broker and on Apache Kafka (Tansu again without Java); docs/fleet.md, "Guarantees, plainly"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.protocol.group import HeartbeatRequest

from responder.ingest.kafka import ensure_topics
from responder.ingest.lease import MembershipLease
from responder.ingest.rebalance import Rebalance
from responder.sandbox.broker import Broker

SESSION_MS = 6000


@pytest.fixture(scope="module", name="tansu")
def _tansu() -> Iterator[str]:
    """The embedded Tansu broker, whatever the suite's broker is (on a machine with Java, Apache Kafka)."""
    with Broker() as broker:
        yield broker.bootstrap


async def _member(bootstrap: str, topic: str, group: str, lease: MembershipLease | None = None) -> AIOKafkaConsumer:
    """A started group member of `topic` that owns partitions (its lease, if any, kept as `KafkaIngest` keeps it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=SESSION_MS,
                                heartbeat_interval_ms=1000, enable_auto_commit=False)
    consumer.subscribe([topic], listener=Rebalance(None, lease=lease))
    if lease is not None:
        lease.watch(consumer)
    await consumer.start()
    for _ in range(300):
        if consumer.assignment():
            return consumer
        await consumer.getmany(timeout_ms=100)
    raise AssertionError("no partition assigned within 30 s")


@pytest.mark.parametrize("broker", ["tansu", "apache_kafka_bootstrap"])
async def test_a_member_expelled_while_silent_is_refused_by_the_broker_and_its_lease_ends(
        request: pytest.FixtureRequest, unique: str, broker: str) -> None:
    """A's heartbeats held past its session, B takes every partition; A's next heartbeat is refused: its lease ended."""
    bootstrap: str = request.getfixturevalue(broker)
    topic, group = f"lease-{unique}", f"lease-group-{unique}"
    await ensure_topics(bootstrap, [topic], partitions=3)
    lease = MembershipLease(SESSION_MS / 1000, 30.0)
    a = await _member(bootstrap, topic, group, lease)
    b: AIOKafkaConsumer | None = None
    try:
        assert lease.kept
        assert lease.lapsed() is None
        coordinator: Any = a._coordinator
        leased = coordinator._send_req  # the lease's wrapper: a held heartbeat still passes through it
        silent, answers = asyncio.Event(), []

        async def held(req: Any) -> Any:
            if isinstance(req, HeartbeatRequest):
                await silent.wait()
                answer = await leased(req)
                answers.append(answer.error_code)
                return answer
            return await leased(req)

        coordinator._send_req = held
        b = await _member(bootstrap, topic, group)
        for _ in range(300):  # the group expels A after its session and gives B all three partitions
            if len(b.assignment()) == 3:
                break
            await b.getmany(timeout_ms=100)
        assert len(b.assignment()) == 3
        silent.set()
        for _ in range(100):
            if answers:
                break
            await asyncio.sleep(0.1)
        assert answers, "A's held heartbeat was never answered"
        assert answers[0] != 0, answers  # the broker's answer: not a member (of that generation)
        assert lease.refused is not None  # ended by the answer, not only by the silence
    finally:
        for consumer in (b, a):
            if consumer is not None:
                await consumer.stop()

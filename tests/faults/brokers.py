"""Brokers for the fault tests: an embedded one stopped however a test ends, an outage (its process SIGSTOPped for a
while, its data kept), what a small topic holds, and replicated topics on a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from responder.sandbox import Broker


@contextlib.contextmanager
def stopped_after(broker: Broker) -> Iterator[Broker]:
    """`broker` started, then stopped (let go on first, in case a test left it SIGSTOPped)."""
    broker.start()
    try:
        yield broker
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()


OUTAGE_S = 4.0  # longer than FAST's request timeout: aiokafka gives the batch up at least once
FAST = {"request_timeout_ms": 1500}  # the clients' options in an outage test


async def stopped_for(broker: Broker, seconds: float = OUTAGE_S) -> None:
    """The broker stops answering for `seconds`, then goes on."""
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(broker.pid, signal.SIGCONT)


async def topic_records(bootstrap: str, topic: str) -> list[Any]:
    """What one fetch from the start of `topic` returns (every record of a small topic)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    return [m for ms in got.values() for m in ms]


async def create_replicated(bootstrap: str, names: list[str]) -> None:
    """Create the topics with 3 partitions of 3 replicas each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(100):  # right after start-up aiokafka may not know the controller yet (AttributeError)
            try:
                await admin.create_topics([NewTopic(n, 3, 3) for n in names])
                return
            except AttributeError:
                await asyncio.sleep(0.1)
    finally:
        await admin.close()

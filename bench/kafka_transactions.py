"""Probe: does aiokafka's transactional producer work on real Apache Kafka (it does not on Tansu)?

    PYTHONPATH=. .venv/bin/python bench/kafka_transactions.py

Starts one Apache Kafka node from the cached Maven jars, commits a transaction holding a changelog record and
the consumer group's offset (send_offsets_to_transaction), then starts a second producer with the same
transactional.id and shows that the first one is fenced (ProducerFenced). Prints what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from responder.ingest.kafka import ensure_topics
from responder.sandbox.kafka_jvm import KafkaCluster

TXN_CONFIG = {"transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1"}


async def probe(bootstrap: str) -> None:
    """Transaction with offsets, then fencing of a zombie."""
    await ensure_topics(bootstrap, ["in", "changelog"], partitions=1)
    seed = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await seed.start()
    await seed.send_and_wait("in", b"x", key=b"k")
    await seed.stop()
    consumer = AIOKafkaConsumer("in", bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    got = await consumer.getmany(timeout_ms=5000)
    print("consumed", sum(len(v) for v in got.values()))
    first = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="responder-partition-0")
    await first.start()
    async with first.transaction():
        await first.send("changelog", b"state", key=b"incident")
        await first.send_offsets_to_transaction({TopicPartition("in", 0): 1}, "g")
    print("transaction committed; group offset now", await consumer.committed(TopicPartition("in", 0)))
    second = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="responder-partition-0")
    await second.start()  # bumps the epoch: `first` is now a zombie
    try:
        async with first.transaction():
            await first.send("changelog", b"zombie", key=b"incident")
        print("zombie commit succeeded (NOT fenced)")
    except (ProducerFenced, KafkaError) as exc:
        print("zombie fenced:", type(exc).__name__)
    await second.stop()
    await consumer.stop()
    with contextlib.suppress(KafkaError):
        await first.stop()


def main() -> None:
    """Run the probe on a throw-away single node."""
    with tempfile.TemporaryDirectory() as d, KafkaCluster(1, workdir=Path(d), config=TXN_CONFIG) as cluster:
        asyncio.run(probe(cluster.bootstrap()))


if __name__ == "__main__":
    main()

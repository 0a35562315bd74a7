"""A record the Kafka client cannot parse (a header key that is not UTF-8, which the broker accepts from any
producer) is stepped over once and dead-lettered, instead of stopping its partition for ever."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from responder.ingest.kafka import ensure_topics
from responder.ingest.reading import read_to_end
from responder.ingest.unreadable import Unreadable, getmany_past
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.integration.test_deadletter import _read_all, _seed, _status

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _produce(bootstrap: str, topic: str, tmp: Path, values: list[tuple[bytes, bool]], key: str = "k") -> None:
    """Send `values` in one batch; those marked True carry a header key that is not UTF-8."""
    files = []
    for i, (value, bad) in enumerate(values):
        path = tmp / f"v{i}{'.bad' if bad else '.ok'}"
        path.write_bytes(value)
        files.append(str(path))
    env = dict(os.environ, AIOKAFKA_NO_EXTENSIONS="1", PYTHONPATH=str(ROOT))
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tests.integration.unreadable_producer",
                                             bootstrap, topic, key, *files], check=True, env=env, cwd=ROOT, timeout=60)


async def _poll_for_ever(consumer: AIOKafkaConsumer) -> None:
    """What every consumer without the step does: poll, and raise on the same record each time."""
    while True:
        await consumer.getmany(timeout_ms=500)


async def test_a_record_in_the_middle_of_a_batch_is_stepped_over_once(kafka_bootstrap, unique, tmp_path):
    """Plain aiokafka raises at every poll; getmany_past hands out what precedes it, steps over the rest of its
    batch (its producer's records), and hands out the next batch."""
    topic = f"unreadable-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await _produce(kafka_bootstrap, topic, tmp_path, [(b"a", False), (b"b", True), (b"c", False)])
    await _produce(kafka_bootstrap, topic, tmp_path, [(b"d", False)])  # another batch
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        with pytest.raises(UnicodeDecodeError):
            await asyncio.wait_for(_poll_for_ever(consumer), 20)
        consumer.seek(TopicPartition(topic, 0), 0)
        seen: list[Any] = []
        async with asyncio.timeout(20):
            while len(seen) < 4:
                batch = await getmany_past(consumer, timeout_ms=500, max_records=100)
                seen += [m for msgs in batch.values() for m in msgs]
        assert await getmany_past(consumer, timeout_ms=500, max_records=100) == {}
    finally:
        await consumer.stop()
    assert [(m.offset, m.value) for m in seen if not isinstance(m, Unreadable)] == [(0, b"a"), (3, b"d")], seen
    unreadable = [m for m in seen if isinstance(m, Unreadable)]
    assert [(m.partition, m.offset) for m in unreadable] == [(0, 1), (0, 2)]
    assert all("UnicodeDecodeError" in m.error for m in unreadable)
    read = await read_to_end(kafka_bootstrap, topic)  # `approvals pending` reads past it too
    assert [(r.offset, r.unreadable is not None) for r in read] == [(0, False), (1, True), (2, True), (3, False)]


async def test_the_service_deadletters_it_and_acts_on_the_alerts_around_it(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """An unreadable record between two leaked-key findings: both keys are contained, it is dead-lettered as
    `unreadable` with its offset, and the partition's offsets are committed past all three."""
    before, after = await _seed(aws, "ml-a"), await _seed(aws, "ml-b")
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    service = Service(settings)
    async with running(service):
        for value, bad in [(envelope_bytes(guardduty_finding(before, user="ml-a")), False), (b'{"x": 1}', True),
                           (envelope_bytes(guardduty_finding(after, user="ml-b")), False)]:  # three producers
            await _produce(kafka_bootstrap, topics["alerts"], tmp_path, [(value, bad)])
        await wait_for(lambda: len(service.engine.state.results()) >= 2 and service.pipeline.counters.records >= 3,
                       timeout=60)
    assert (await _status(aws, before, "ml-a"), await _status(aws, after, "ml-b")) == ("Inactive", "Inactive")
    [dead] = await _read_all(kafka_bootstrap, topics["deadletter"], 1)
    headers = dict(dead.headers)
    assert (headers["dlq.reason"], headers["dlq.offset"], dead.value) == (b"unreadable", b"1", b"")
    assert b"UnicodeDecodeError" in headers["dlq.detail"]
    assert service.metrics.value("responder_deadlettered_total", reason="unreadable") == 1
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topics["alerts"], int(headers["dlq.partition"]))
        committed = await admin.list_consumer_group_offsets(settings.group_id, partitions=[tp])
    finally:
        await admin.close()
    assert committed[tp].offset == 3

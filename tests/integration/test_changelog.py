"""The state changelog on a real broker: slices round-trip by key, tombstones delete, bad records stop the restore."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogError
from responder.ingest.changelog import Changelog, ensure_changelog


async def test_latest_slice_per_key_is_restored_and_tombstones_remove(kafka_bootstrap, unique):
    """Two writes of one key restore the second; a tombstoned key is gone; another partition is untouched."""
    topic = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, topic, 2)
    log = Changelog(kafka_bootstrap, topic)
    await log.start()
    try:
        from datetime import UTC, datetime

        at = datetime(2026, 11, 25, tzinfo=UTC)
        one = EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at, events=1)])
        again = EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at, events=7)])
        other = EngineSnapshot(incidents=[Incident("i2", "rb", "g2", at, at)])
        await log.write(1, {"i1": one, "i2": other})
        await log.write(1, {"i1": again, "i2": None})
        restored = await log.read(1)
        assert [s.incidents[0].events for s in restored] == [7]
        assert await log.read(0) == []
    finally:
        await log.stop()


async def test_a_record_that_does_not_parse_stops_the_restore_loudly(kafka_bootstrap, unique):
    """A changelog value that is not an EngineSnapshot raises ChangelogError naming the key; nothing is skipped."""
    topic = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(topic, b'{"incidents": "nope"}', key=b"inc-x", partition=0)
    await producer.stop()
    log = Changelog(kafka_bootstrap, topic)
    await log.start()  # a restore writes its fence first
    try:
        with pytest.raises(ChangelogError, match="inc-x"):
            await log.read(0)
    finally:
        await log.stop()

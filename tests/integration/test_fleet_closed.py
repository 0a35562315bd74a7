"""On a real broker, an evicted group key's `~closed#` record is tombstoned once past the horizon: a restore after it
reads no stale record (the clock is driven, not slept)."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from responder.engine.incidents import Incident
from responder.engine.partitions import closed_key
from responder.engine.state import CLOSED_HORIZON
from responder.fleet import FleetState
from responder.ingest.changelog import Changelog
from tests.fleet_kit import COOLDOWN_RB, from_partition, send_from
from tests.fleet_kit import quota_member as _member_writing
from tests.kit import Kit, make_kit


async def _latest(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    """The latest value of every key in partition 0 of `topic`, tombstones included (as a plain consumer reads it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        latest: dict[bytes, bytes | None] = {}
        while await consumer.position(tp) < end:
            for msg in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                latest[msg.key or b""] = msg.value
        return latest
    finally:
        await consumer.stop()


async def _member(tmp_path: Path, name: str, log: Changelog) -> tuple[Kit, FleetState]:
    (tmp_path / name).mkdir()
    kit = make_kit(tmp_path / name, {"rb": COOLDOWN_RB})
    return kit, FleetState(kit.engine, log)


async def _evict_one(kit: Kit, fleet: FleetState) -> Incident:
    """Restore partition 0, open one incident from it and evict it (its `~closed#` record written)."""
    await restore_one(fleet)
    await kit.send()
    [incident] = kit.engine.state.incidents.all()
    await fleet.on_durable(from_partition(kit, 0))
    kit.clock.now += 3 * 3600
    assert await fleet.evict() == [incident.id]
    return incident


async def test_a_restore_after_the_horizon_reads_no_stale_closed_record(kafka_bootstrap, log, tmp_path):
    """A restore after the horizon merges no `~closed#` record and tombstones it, so the next restore reads none."""
    kit, first = await _member(tmp_path, "first", log)
    incident = await _evict_one(kit, first)
    key = closed_key("rb", incident.group_key).encode()
    assert (await _latest(kafka_bootstrap, log.topic))[key] is not None
    first.revoke([0])

    later, second = await _member(tmp_path, "second", log)
    later.clock.now = kit.clock.now + CLOSED_HORIZON + 1
    await restore_one(second)
    assert later.engine.state.snapshot().closed == []
    assert (await _latest(kafka_bootstrap, log.topic))[key] is None  # tombstoned
    assert not [c for s in await log.read(0) for c in s.closed]


async def test_an_eviction_past_the_horizon_tombstones_the_closed_record(kafka_bootstrap, log, tmp_path):
    """The replica that wrote a `~closed#` record tombstones it at the eviction that forgets the group key."""
    kit, fleet = await _member(tmp_path, "only", log)
    incident = await _evict_one(kit, fleet)
    assert [c[1] for s in await log.read(0) for c in s.closed] == [incident.group_key]
    kit.clock.now += CLOSED_HORIZON + 1
    await fleet.evict()
    assert (await _latest(kafka_bootstrap, log.topic))[closed_key("rb", incident.group_key).encode()] is None
    assert not [c for s in await log.read(0) for c in s.closed]


async def restore_one(fleet: FleetState) -> None:
    """Fence, read and adopt partition 0, as the service's background restore does."""
    slices = await fleet.fetch(0)
    assert slices is not None, fleet.failed
    fleet.adopt(0, slices)


async def test_an_incident_that_moved_partition_leaves_no_record_behind(kafka_bootstrap, log, tmp_path):
    """An incident moved to partition 1 is tombstoned in partition 0, so restoring partition 0 brings no stale copy."""
    kit, _ = _member_writing(tmp_path, "first", log, {0, 1})
    await send_from(kit, 0, "f1")
    [incident] = kit.engine.state.incidents.all()
    await send_from(kit, 1, "f2")
    assert (await _latest(kafka_bootstrap, log.topic))[incident.id.encode()] is None
    assert not [i for s in await log.read(0) for i in s.incidents]
    assert [i.id for s in await log.read(1) for i in s.incidents] == [incident.id]

"""A fleet member that cannot restore a partition does not consume it, says why, retries, and is not ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.engine.state import EngineSnapshot
from responder.errors import ChainBroken, ChangelogError, ReplicaFenced
from responder.fleet import FleetState
from responder.models.event import RawRecord
from responder.service import Service
from responder.service.rejoin import fenced
from responder.settings import Settings
from tests.kit import make_kit
from tests.unit.test_guards import ECHO


class FlakyChangelog:
    """Fails to read partition 1 until `healed`."""

    txn = None  # no Kafka transactions

    def __init__(self) -> None:
        self.healed = False
        self.written: list[tuple[int, dict[str, EngineSnapshot | None]]] = []

    async def read(self, partition: int) -> list[EngineSnapshot]:
        if partition == 1 and not self.healed:
            raise ChangelogError("changelog t[1] record b'k' does not parse: ('incidents',): bad")
        return []

    async def write(self, partition: int, slices: dict[str, EngineSnapshot | None], quotas: object = None,
                    urgent: bool = False) -> None:
        self.written.append((partition, dict(slices)))


async def test_unrestorable_partition_is_reported_and_retried(tmp_path):
    """assign() returns the partition it could not restore with the reason; a later retry takes it."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = FlakyChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    assert await fleet.assign([0, 1]) == {1}
    assert fleet.owned == {0}
    assert "does not parse" in fleet.failed[1]
    log.healed = True
    assert await fleet.assign([1]) == set()
    assert fleet.owned == {0, 1}
    assert not fleet.failed


async def test_revoked_partition_state_is_released_and_not_written(tmp_path):
    """After revocation the partition's incidents leave memory and later flushes do not write its changelog."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = FlakyChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    await fleet.assign([0])
    entries = []
    await kit.send(finding_id="f1")
    entries = list(kit.engine.recorder.entries())
    for e in entries:
        if e.kind == "event.received":
            e.body["origin"] = {"partition": 0}
    await fleet.on_durable(entries)
    assert log.written
    assert log.written[-1][0] == 0
    fleet.revoke([0])
    assert not kit.engine.state.incidents.all()
    log.written.clear()
    await fleet.on_durable(entries)
    assert log.written == []


async def test_readyz_is_not_ready_while_a_partition_is_not_restored(tmp_path):
    """In fleet mode `/readyz` (ready_now) says not ready, and which partitions and why, while any owned partition
    failed to restore."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, runbooks=[])
    assert service.fleet is not None
    service.ready.set()
    assert service.ready_now()
    service.fleet.failed[1] = "changelog unreadable"
    assert not service.ready_now()
    assert service.unready() == "partition(s) 1 not restored (paused, retried with backoff): changelog unreadable"
    service.fleet.failed.clear()
    service.request_stop()
    assert service.unready() == "stopping"
    service.recorder.close()
    await service.close_unstarted()


class BuggyChangelog(FlakyChangelog):
    """Partition 1's read raises what no restore expects (a bug, or the client's own parse error)."""

    async def read(self, partition: int) -> list[EngineSnapshot]:
        if partition == 1:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return []


async def test_an_unexpected_restore_error_fails_that_partition_only(tmp_path):
    """Whatever a partition's restore raises, that partition is failed with the error named (not consumed, retried),
    and the other partitions are restored."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    fleet = FleetState(kit.engine, BuggyChangelog())  # type: ignore[arg-type]
    assert await fleet.assign([0, 1, 2]) == {1}
    assert fleet.owned == {0, 2}
    assert fleet.failed[1].startswith("UnicodeDecodeError: 'utf-8' codec can't decode")


def _fleet_service(tmp_path: Path) -> Service:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    return Service(settings, runbooks=[])


class _Consumer:
    """What KafkaIngest asks of aiokafka's consumer to pause and resume: the calls, in order."""

    def __init__(self, assigned: list[TopicPartition]) -> None:
        self.assigned, self.calls = set(assigned), []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", sorted(tps)))

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", sorted(tps)))


@contextlib.asynccontextmanager
async def _consuming(service: Service, partitions: list[TopicPartition]) -> AsyncIterator[_Consumer]:
    """`service` with a recording consumer in place of aiokafka's (assigned `partitions`); closed after."""
    real, consumer = service.ingest.consumer, _Consumer(partitions)
    service.ingest.consumer = consumer  # type: ignore[assignment]
    try:
        yield consumer
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()


@pytest.fixture
def partitions() -> list[TopicPartition]:
    return [TopicPartition("a", 0), TopicPartition("a", 1)]


async def test_assigned_partitions_are_held_before_the_restore_and_a_failed_one_stays_held(tmp_path, partitions):
    """The partitions are paused before the callback's first await (aiokafka fetches a new assignment meanwhile);
    the restored one is resumed after the restore, the failed one stays paused even when backpressure resumes it."""
    service = _fleet_service(tmp_path)
    assert service.fleet is not None
    async with _consuming(service, partitions) as consumer:
        seen: list[Any] = []

        async def flush() -> None:  # the callback's first await
            seen.append(list(consumer.calls))

        async def assign(numbers: Any) -> set[int]:
            seen.append(list(consumer.calls))
            return {1}

        service.recorder.flush = flush  # type: ignore[method-assign]
        service.fleet.assign = assign  # type: ignore[method-assign]
        await service._on_assigned(partitions)
        assert seen == [[("pause", partitions)]] * 2
        assert consumer.calls[-1] == ("resume", [partitions[0]])
        service.ingest.resume(partitions)  # what Flow does when a lane drains
        assert consumer.calls[-1] == ("resume", [partitions[0]])
        await service._on_revoked(partitions)
        assert not service.ingest.held


async def test_an_assignment_that_fails_holds_its_partitions_and_nothing_is_handled_after(tmp_path, partitions):
    """aiokafka logs and swallows what a rebalance callback raises, then consumes: the partitions stay paused, the
    next chunk and the next poll raise the error (the service stops loudly), and `/readyz` says why."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"]),
                      runbooks=[])
    async with _consuming(service, partitions) as consumer:

        def recover() -> None:
            raise ChainBroken(3, "hash mismatch")

        async def poll(timeout_ms: int = 200) -> dict[Any, list[Any]]:
            return {}

        service._recover = recover  # type: ignore[method-assign]
        service.ingest.poll = poll  # type: ignore[method-assign]
        await service._on_assigned(partitions)  # does not raise: aiokafka would only log it
        assert consumer.calls == [("pause", partitions)]
        service.ready.set()
        assert service.unready() == "a rebalance failed, stopping: ChainBroken: entry 3: hash mismatch"
        with pytest.raises(ChainBroken, match="hash mismatch"):
            await service._consume()
        with pytest.raises(ChainBroken, match="hash mismatch"):  # a chunk polled before it is not handled either
            await service._handle_batch({partitions[0]: [RawRecord(topic="a", value=b"{}")]})


async def test_a_fence_at_revocation_forgets_the_state_and_the_next_poll_rejoins(tmp_path):
    """A fleet member fenced while committing revoked partitions still forgets their state (never a stale copy to
    act on if they come back), and the fence is raised by the next poll, where `serve_rejoining` sees it."""
    service = _fleet_service(tmp_path)
    assert service.fleet is not None
    service.fleet.owned = {0, 1}

    async def commit(partitions: Any = None) -> None:
        raise ReplicaFenced("changelog changelog[0]: fenced")

    async def poll(timeout_ms: int = 200) -> dict[Any, list[Any]]:
        return {}

    service.commits.commit = commit  # type: ignore[method-assign]
    service.ingest.poll = poll  # type: ignore[method-assign]
    try:
        await service._on_revoked([TopicPartition("a", 0)])  # does not raise: aiokafka would only log it
        assert service.fleet.owned == {1}
        with pytest.raises(ReplicaFenced) as raised:
            await service._consume()
        assert fenced(raised.value)
    finally:
        service.recorder.close()
        await service.close_unstarted()


def test_a_failed_restore_is_retried_with_a_doubling_backoff(tmp_path):
    """A partition that keeps failing is due again after 1 s, then 2, 4 ... up to 60 s; a restore that succeeds
    clears it."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    now = [1000.0]
    fleet = FleetState(kit.engine, FlakyChangelog(), clock=lambda: now[0])  # type: ignore[arg-type]
    waits = []
    for _ in range(8):
        fleet._failed(1, ChangelogError("unreadable"))
        assert fleet.due() == set()
        start = now[0]
        while not fleet.due():
            now[0] += 0.5
        waits.append(now[0] - start)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    fleet.changelog.healed = True  # type: ignore[attr-defined]
    assert asyncio.run(fleet.assign(fleet.due())) == set()
    assert (fleet.failed, fleet.due()) == ({}, set())
    fleet._failed(1, ChangelogError("unreadable"))
    fleet.revoke([1])
    assert (fleet.failed, fleet._retry) == ({}, {})


async def test_the_poll_loop_retries_a_failed_partition_only_when_due_and_releases_it(tmp_path, partitions):
    """`_fleet_upkeep` (once per poll) leaves a failed partition alone until its backoff passed, then restores and
    resumes it."""
    service = _fleet_service(tmp_path)
    assert service.fleet is not None
    async with _consuming(service, partitions) as consumer:
        now = [0.0]
        service.fleet.clock = lambda: now[0]
        tries: list[Any] = []

        async def assign(numbers: Any) -> set[int]:
            tries.append(set(numbers))
            return set()

        service.ingest.hold([partitions[1]])
        service.fleet._failed(1, ChangelogError("unreadable"))
        service.fleet.assign = assign  # type: ignore[method-assign]
        for _ in range(5):
            await service._fleet_upkeep()
        assert tries == []
        now[0] = 1.0
        await service._fleet_upkeep()
        assert tries == [{1}]
        assert consumer.calls[-1] == ("resume", [partitions[1]])
        assert not service.ingest.held


async def test_a_single_replica_holds_then_releases_every_assigned_partition(tmp_path, partitions):
    """Without a fleet, the assigned partitions are paused before the timeline is flushed and recovered, and all
    resumed after."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"]),
                      runbooks=[])
    async with _consuming(service, partitions) as consumer:
        await service._on_assigned(partitions)
        assert consumer.calls == [("pause", partitions), ("resume", partitions)]
        assert service._rebalance_error is None

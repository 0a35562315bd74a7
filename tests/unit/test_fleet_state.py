"""A fleet member that cannot restore a partition does not consume it, says why, retries, and is not ready."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.engine.snapshot import EngineSnapshot
from responder.errors import ChainBroken
from responder.errors_kafka import ChangelogError, ReplicaFenced
from responder.fleet import FleetState
from responder.models.event import RawRecord
from responder.service import Service
from responder.service.rejoinreasons import rejoin_reason
from responder.settings import Settings
from tests.fleet_kit import FlakyChangelog, fleet_service, slow_service, with_recording_consumer
from tests.kit import ECHO, make_kit, restore


@pytest.fixture
def partitions() -> list[TopicPartition]:
    return [TopicPartition("a", 0), TopicPartition("a", 1)]


async def test_unrestorable_partition_is_reported_and_retried(tmp_path):
    """A restore reports the partition it could not read with the reason; a later retry takes it."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = FlakyChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    assert await restore(fleet, [0, 1]) == {1}
    assert fleet.owned == {0}
    assert "does not parse" in fleet.failed[1]
    log.healed = True
    assert await restore(fleet, [1]) == set()
    assert fleet.owned == {0, 1}
    assert not fleet.failed


async def test_revoked_partition_state_is_released_and_not_written(tmp_path):
    """After revocation the partition's incidents leave memory and later flushes do not write its changelog."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = FlakyChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    await restore(fleet, [0])
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
    """In fleet mode `/readyz` says not ready, naming which partitions and why, while one failed to restore."""
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
    """Whatever a partition's restore raises fails that partition only, with the error named; others restore."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    fleet = FleetState(kit.engine, BuggyChangelog())  # type: ignore[arg-type]
    assert await restore(fleet, [0, 1, 2]) == {1}
    assert fleet.owned == {0, 2}
    assert fleet.failed[1].startswith("UnicodeDecodeError: 'utf-8' codec can't decode")


async def test_assigned_partitions_are_held_and_restored_in_the_background(tmp_path, partitions):
    """Assigned partitions are held and restored in the background; restored ones resume, failed ones stay paused."""
    service, log = slow_service(tmp_path)
    async with with_recording_consumer(service, partitions) as consumer:
        service.ready.set()
        await asyncio.wait_for(service._on_assigned(partitions), 10)  # a hang guard: it must not wait for the read
        await log.reading.wait()
        assert consumer.calls == [("pause", partitions)]
        assert service.unready() == "partition(s) 0, 1 being restored from the changelog (paused until then)"
        log.go.set()
        await asyncio.gather(*service._restorers.values())
        assert consumer.calls[-1] == ("resume", [partitions[0]])
        assert service.fleet.owned == {0}
        assert service.unready() is not None
        assert service.unready().startswith("partition(s) 1 not restored")
        service.ingest.resume(partitions)  # what Flow does when a lane drains
        assert consumer.calls[-1] == ("resume", [partitions[0]])
        await service._on_revoked(partitions)
        assert not service.ingest.held


async def test_a_slow_restore_holds_up_no_other_partitions_restore(tmp_path, partitions):
    """While partition 0's restore read waits, partition 2's is merged and released, partition 1's failure recorded."""
    service, log = slow_service(tmp_path, slow=frozenset({0}))
    three = [*partitions, TopicPartition("a", 2)]
    async with with_recording_consumer(service, three) as consumer:
        await service._on_assigned(three)
        await asyncio.wait_for(asyncio.gather(service._restorers[1], service._restorers[2]), 10)  # a hang guard
        assert service.fleet.owned == {2}
        assert consumer.calls[-1] == ("resume", [three[2]])
        assert set(service.fleet.failed) == {1}
        assert service.fleet.restoring == {0}
        log.go.set()
        await service._restorers[0]
        assert service.fleet.owned == {0, 2}


async def test_the_lanes_and_the_poll_loop_go_on_while_a_restore_reads(tmp_path, partitions):
    """While a restore reads, a lane takes the gate's shared side and the poll loop's upkeep returns."""
    service, log = slow_service(tmp_path)
    async with with_recording_consumer(service, partitions):
        service.fleet.owned.add(0)
        service._given = {0, 1}
        service.fleet._failed(1, ChangelogError("unreadable"))
        service.fleet._retry[1] = (0.0, 1.0)  # due now
        service._fleet_upkeep()  # not a coroutine: nothing for the poll loop to wait for
        await log.reading.wait()

        async def lane() -> None:
            async with service._lock.shared():
                pass

        await asyncio.wait_for(lane(), 10)  # a deadlock guard, not a timing: the gate is free
        log.go.set()
        await service._restorers[1]
        assert service.fleet.failed[1].startswith("changelog t[1] record b'k' does not parse")


async def test_a_revocation_cancels_a_restore_that_reads_and_it_is_never_adopted(tmp_path, partitions):
    """A partition revoked while its changelog is read has the read cancelled and is never adopted or released."""
    service, log = slow_service(tmp_path)
    async with with_recording_consumer(service, partitions) as consumer:
        await service._on_assigned(partitions)
        await log.reading.wait()
        restores = list(service._restorers.values())
        await asyncio.wait_for(service._on_revoked(partitions), 10)  # a hang guard: the read is cancelled
        assert sorted(log.cancelled) == [0, 1]
        assert [task.cancelled() for task in restores] == [True, True]
        assert (service.fleet.owned, service.fleet.failed, service.fleet.restoring) == (set(), {}, set())
        assert consumer.calls == [("pause", partitions)]
        assert service._rebalance_error is None


async def test_an_interrupted_restore_of_a_partition_still_ours_is_retried(tmp_path, partitions):
    """A restore cut short while reading leaves a partition still ours failed and due for a retry in 1 s."""
    service, log = slow_service(tmp_path)
    now = [0.0]
    service.fleet.clock = lambda: now[0]
    async with with_recording_consumer(service, partitions):
        await service._on_assigned([partitions[0]])
        await log.reading.wait()
        await asyncio.wait_for(service._end_restore(), 10)  # a hang guard: the read is cancelled
        assert service.fleet.failed == {0: "the restore of partition 0 was interrupted"}
        assert service.fleet.due() == set()
        now[0] = 1.0
        assert service.fleet.due() == {0}


def _merging_waits(fleet: FleetState) -> tuple[asyncio.Event, asyncio.Event]:
    """(merging, go): a restore that merges sets `merging`, then waits for `go` before it ends."""
    merging, go = asyncio.Event(), asyncio.Event()

    async def release_held() -> None:
        merging.set()
        await go.wait()

    fleet.release_held = release_held  # type: ignore[method-assign]
    return merging, go


async def test_a_revocation_waits_for_a_restore_that_merges(tmp_path, partitions):
    """A revocation waits for a restore that merges under the gate to end, then forgets the partition."""
    service = fleet_service(tmp_path)
    assert service.fleet is not None
    service.fleet.changelog.read = FlakyChangelog().read  # type: ignore[method-assign]
    merging, go = _merging_waits(service.fleet)
    async with with_recording_consumer(service, partitions):
        await service._on_assigned([partitions[0]])
        await merging.wait()
        restore = service._restorers[0]
        revoking = asyncio.create_task(service._on_revoked([partitions[0]]))
        for _ in range(20):  # the revocation runs as far as it can
            await asyncio.sleep(0)
        assert not revoking.done()
        go.set()
        await revoking
        assert not restore.cancelled()
        assert service.fleet.owned == set()


async def test_no_restore_starts_for_a_partition_being_revoked(tmp_path, partitions):
    """A partition being revoked is neither failed nor retried, so no fence or read of it follows the revocation."""
    service, log = slow_service(tmp_path)
    now = [0.0]
    service.fleet.clock = lambda: now[0]
    async with with_recording_consumer(service, partitions):
        in_lane, done = asyncio.Event(), asyncio.Event()

        async def lane() -> None:  # a chunk in hand
            async with service._lock.shared():
                in_lane.set()
                await done.wait()

        chunk = asyncio.create_task(lane())
        await in_lane.wait()
        await service._on_assigned(partitions)
        await log.reading.wait()
        revoking = asyncio.create_task(service._on_revoked([partitions[1]]))
        for _ in range(20):  # the revocation runs as far as it can: it waits for the gate
            await asyncio.sleep(0)
        assert not revoking.done()
        assert sorted(log.cancelled) == [0, 1]
        assert set(service.fleet.failed) == {0}  # interrupted, still ours
        now[0] = 1.0
        service._fleet_upkeep()  # a poll meanwhile, once the retry is due
        assert set(service._restorers) == {0}
        done.set()
        await asyncio.gather(chunk, revoking)
        assert 1 not in service.fleet.restoring | set(service.fleet.failed) | service.fleet.owned
        log.go.set()
        await service._restorers[0]
        assert service.fleet.owned == {0}


async def test_a_partition_revoked_while_its_restore_flushes_is_not_adopted(tmp_path, partitions):
    """A partition revoked while its restore flushes the timeline is waited for, then neither adopted nor resumed."""
    service = fleet_service(tmp_path)
    service.fleet.changelog.read = FlakyChangelog().read  # type: ignore[method-assign]
    flushing, go, flushes = asyncio.Event(), asyncio.Event(), [0]

    async def flush() -> None:  # the restore's flush waits; the hand-over's does not
        flushes[0] += 1
        if flushes[0] == 1:
            flushing.set()
            await go.wait()

    service.recorder.flush = flush  # type: ignore[method-assign]
    async with with_recording_consumer(service, partitions) as consumer:
        await service._on_assigned([partitions[0]])
        await flushing.wait()
        revoking = asyncio.create_task(service._on_revoked([partitions[0]]))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done()
        go.set()
        await revoking
        assert service.fleet.owned == set()
        assert consumer.calls == [("pause", [partitions[0]])]


async def test_a_restore_cancelled_before_its_first_step_is_not_left_restoring(tmp_path, partitions):
    """A restore ended before its task ran fails and retries a partition still ours and forgets one no longer ours."""
    service, _ = slow_service(tmp_path)
    async with with_recording_consumer(service, partitions):
        service._given = {0, 1}
        service._restore_in_background({0, 1})
        service._given.discard(1)  # as a revocation of 1 would
        await service._end_restore()
        assert service.fleet.restoring == set()
        assert service.fleet.failed == {0: "the restore of partition 0 was interrupted"}


async def test_ending_the_restores_also_ends_one_started_while_it_waited(tmp_path, partitions):
    """`_end_restore` waits for a merging restore and also ends a restore started while it waited."""
    service, log = slow_service(tmp_path, slow=frozenset({1}))
    merging, go = _merging_waits(service.fleet)
    async with with_recording_consumer(service, partitions):
        await service._on_assigned([partitions[0]])
        await merging.wait()
        ending = asyncio.create_task(service._end_restore())
        for _ in range(5):
            await asyncio.sleep(0)
        log.reading.clear()  # partition 0's read is done: wait for partition 1's
        service._given.add(1)
        service._restore_in_background({1})
        late = service._restorers[1]
        await log.reading.wait()
        go.set()
        await asyncio.wait_for(ending, 10)  # a hang guard: the late read is cancelled
        assert late.cancelled()
        assert log.cancelled == [1]


async def test_the_teardown_ends_the_restores_and_starts_none(tmp_path, partitions):
    """A closing service cancels a restore still reading, and an assignment during the teardown starts no restore."""
    service, log = slow_service(tmp_path)
    await service._on_assigned([partitions[0]])  # the consumer is never started: it only records the assignment
    await log.reading.wait()
    reading = service._restorers[0]
    await asyncio.wait_for(service._close_started([]), 10)  # a hang guard: the read is cancelled
    assert reading.cancelled()
    await service._on_assigned([partitions[1]])
    assert service._restorers == {}


async def test_a_failing_poll_loop_ends_the_restores(tmp_path, partitions):
    """When the alert loop fails, a restore that still reads is cancelled before the loop's error goes up."""
    service, log = slow_service(tmp_path)

    async def consume() -> None:
        await service._on_assigned([partitions[0]])
        await log.reading.wait()
        raise ChangelogError("the poll failed")

    service._consume = consume  # type: ignore[method-assign]
    async with with_recording_consumer(service, partitions):
        with pytest.raises(ChangelogError, match="the poll failed"):
            await asyncio.wait_for(service._alerts_loop(), 10)  # a hang guard: the read is cancelled
        assert log.cancelled == [0]


async def test_an_assignment_that_fails_holds_its_partitions_and_nothing_is_handled_after(tmp_path, partitions):
    """A failed assignment keeps its partitions paused; the next chunk and poll raise the error, `/readyz` says why."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"]),
                      runbooks=[])
    async with with_recording_consumer(service, partitions) as consumer:

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
    """A member fenced while committing revoked partitions forgets their state, and the next poll raises the fence."""
    service = fleet_service(tmp_path)
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
        assert rejoin_reason(raised.value) == "fenced"
    finally:
        service.recorder.close()
        await service.close_unstarted()


def test_a_failed_restore_is_retried_with_a_doubling_backoff(tmp_path):
    """A failing partition is retried after 1 s, then 2, 4 ... up to 60 s; a restore that succeeds clears it."""
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
    assert asyncio.run(restore(fleet, fleet.due())) == set()
    assert (fleet.failed, fleet.due()) == ({}, set())
    fleet._failed(1, ChangelogError("unreadable"))
    fleet.revoke([1])
    assert (fleet.failed, fleet._retry) == ({}, {})


async def test_the_poll_loop_retries_a_failed_partition_only_when_due_and_releases_it(tmp_path, partitions):
    """`_fleet_upkeep` restores a failed partition only once its backoff passed, then resumes it, never two at once."""
    service = fleet_service(tmp_path)
    assert service.fleet is not None
    async with with_recording_consumer(service, partitions) as consumer:
        now = [0.0]
        service.fleet.clock = lambda: now[0]
        tries: list[Any] = []

        async def fetch(partition: int) -> list[EngineSnapshot]:
            tries.append(partition)
            return []

        service._given = {0, 1}
        service.ingest.hold([partitions[1]])
        service.fleet._failed(1, ChangelogError("unreadable"))
        service.fleet.fetch = fetch  # type: ignore[method-assign]
        for _ in range(5):
            service._fleet_upkeep()
        assert service._restorers == {}
        now[0] = 1.0
        service._fleet_upkeep()
        first = service._restorers[1]
        service._fleet_upkeep()
        assert service._restorers[1] is first
        await first
        assert tries == [1]
        assert consumer.calls[-1] == ("resume", [partitions[1]])
        assert not service.ingest.held
        assert service.fleet.owned == {1}


async def test_a_single_replica_holds_then_releases_every_assigned_partition(tmp_path, partitions):
    """Without a fleet, assigned partitions are paused while the timeline is flushed and recovered, then resumed."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"]),
                      runbooks=[])
    async with with_recording_consumer(service, partitions) as consumer:
        await service._on_assigned(partitions)
        assert consumer.calls == [("pause", partitions), ("resume", partitions)]
        assert service._rebalance_error is None

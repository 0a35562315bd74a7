"""A fleet member that cannot restore a partition does not consume it, says why, retries, and is not ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from responder.engine.state import EngineSnapshot
from responder.errors import ChainBroken, ChangelogError
from responder.fleet import FleetState
from responder.service import Service
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
    assert service.unready() == "partition(s) 1 not restored (paused, retried each poll): changelog unreadable"
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


async def test_an_assignment_that_fails_pauses_its_partitions_and_the_next_poll_raises(tmp_path):
    """aiokafka logs and swallows what a rebalance callback raises, then consumes: the partitions are paused instead,
    and the alert loop raises the error at its next poll (the service stops loudly)."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"]),
                      runbooks=[])
    paused: list[Any] = []
    broken = ChainBroken(3, "hash mismatch")

    def recover() -> None:
        raise broken

    async def poll(timeout_ms: int = 200) -> dict[Any, list[Any]]:
        return {}

    service._recover = recover  # type: ignore[method-assign]
    service.ingest.pause = paused.extend  # type: ignore[method-assign]
    service.ingest.poll = poll  # type: ignore[method-assign]
    try:
        partitions = [TopicPartition("a", 0), TopicPartition("a", 1)]
        await service._on_assigned(partitions)  # does not raise: aiokafka would only log it
        assert paused == partitions
        with pytest.raises(ChainBroken, match="hash mismatch"):
            await service._consume()
    finally:
        service.recorder.close()
        await service.close_unstarted()


async def test_revoked_partitions_state_is_forgotten_even_when_their_commit_fails(tmp_path):
    """A fleet member whose last commit of revoked partitions fails still forgets their state, so it never acts on
    a stale copy if they come back."""
    service = _fleet_service(tmp_path)
    assert service.fleet is not None
    service.fleet.owned = {0, 1}

    async def commit(partitions: Any = None) -> None:
        raise KafkaError("CommitFailedError")

    service.commits.commit = commit  # type: ignore[method-assign]
    try:
        with pytest.raises(KafkaError):
            await service._on_revoked([TopicPartition("a", 0)])
        assert service.fleet.owned == {1}
    finally:
        service.recorder.close()
        await service.close_unstarted()

"""A manual assignment of the alert topics (`kafka_manual_assignment`) is widened to the partitions added while it
runs: each added one held until its state is in, the others keeping their positions and their pauses."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.ingest import kafka as module
from responder.ingest.kafka import KafkaIngest
from responder.service import Service
from responder.settings import Settings
from tests.fleet_kit import slow_service, with_recording_consumer
from tests.kit import chunk_in_hand

TOPIC = "alerts"


def _tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


class _Consumer:
    """The parts of an AIOKafkaConsumer a poll's widening uses: the client's metadata, the assignment with its
    positions (aiokafka's subscription state), pauses and seeks."""

    def __init__(self, partitions: set[int], assigned: list[int], standing: dict[int, int]) -> None:
        self.known = partitions
        self._client = SimpleNamespace(cluster=SimpleNamespace(partitions_for_topic=lambda t: self.known))
        self.assigns: list[list[TopicPartition]] = []
        self.seeks: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._assign([_tp(p) for p in assigned], {_tp(p): o for p, o in standing.items()})

    def _assign(self, partitions: list[TopicPartition], standing: dict[TopicPartition, int]) -> None:
        def state(tp: TopicPartition) -> Any:
            return SimpleNamespace(has_valid_position=tp in standing, position=standing.get(tp))

        assignment = SimpleNamespace(tps=set(partitions), state_value=state)
        self._subscription = SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))

    def assignment(self) -> set[TopicPartition]:
        return set(self._subscription.subscription.assignment.tps)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigns.append(sorted(partitions))
        self._assign(partitions, {})  # aiokafka starts every partition of a new assignment afresh
        self._paused = set()  # and forgets its pauses

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)


async def _ingest(monkeypatch: pytest.MonkeyPatch, consumer: _Consumer, *, manual: bool = True) -> Any:
    told: list[list[TopicPartition]] = []

    async def assigned(partitions: list[TopicPartition]) -> None:
        told.append(partitions)

    ingest = KafkaIngest("127.0.0.1:9", [TOPIC], "g", "dlq", manual_assignment=manual, on_assigned=assigned)
    await ingest.consumer.stop()
    await ingest.producer.stop()
    ingest.consumer = consumer

    async def nothing(consumer: Any, *partitions: Any, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        return {}

    monkeypatch.setattr(module, "getmany_past", nothing)
    return ingest, told


async def test_an_added_alert_partition_is_assigned_held_and_handed_to_the_service(monkeypatch) -> None:
    """An alert partition added to the metadata is assigned and held until its state is in; 0 and 1 resume."""
    consumer = _Consumer({0, 1, 2}, [0, 1], {0: 7, 1: 3})
    ingest, told = await _ingest(monkeypatch, consumer)
    await ingest.poll()
    assert consumer.assigns == [[_tp(0), _tp(1), _tp(2)]]
    assert consumer.seeks == {_tp(0): 7, _tp(1): 3}
    assert told == [[_tp(2)]]
    assert ingest.held == {_tp(2)}
    assert consumer.paused() == {_tp(2)}
    ingest.release([_tp(2)])  # its state is in
    assert consumer.paused() == set()


async def test_partitions_paused_for_backpressure_or_held_stay_paused_when_the_assignment_widens(
        monkeypatch) -> None:
    """A partition paused for backpressure or still held stays paused when the assignment widens."""
    consumer = _Consumer({0, 1, 2, 3}, [0, 1, 2], {0: 5})
    ingest, told = await _ingest(monkeypatch, consumer)
    ingest.hold([_tp(1)])
    ingest.pause([_tp(0)])  # backpressure (Flow)
    await ingest.poll()
    assert consumer.paused() == {_tp(0), _tp(1), _tp(3)}
    assert ingest.held == {_tp(1), _tp(3)}
    assert told == [[_tp(3)]]
    ingest.resume([_tp(0), _tp(1)])  # the lane drained; 1 stays held
    assert consumer.paused() == {_tp(1), _tp(3)}


async def test_the_same_partitions_leave_the_assignment_alone(monkeypatch) -> None:
    """No partition added: nothing is assigned again, no position reset, nothing handed to the service."""
    consumer = _Consumer({0, 1}, [0, 1], {0: 2})
    ingest, told = await _ingest(monkeypatch, consumer)
    await ingest.poll()
    assert (consumer.assigns, consumer.seeks, told) == ([], {}, [])


async def test_a_group_member_leaves_added_partitions_to_the_group(monkeypatch) -> None:
    """A consumer group's assignment follows the topic through a rejoin (aiokafka's): its polls assign nothing."""
    consumer = _Consumer({0, 1, 2}, [0, 1], {})
    ingest, told = await _ingest(monkeypatch, consumer, manual=False)
    await ingest.poll()
    assert (consumer.assigns, told) == ([], [])


async def test_a_manual_assignment_reads_the_alert_topics_metadata_every_30_seconds() -> None:
    """A manually assigned alert consumer reads the topics' partitions every 30 s; a group's keeps 5 minutes."""
    for manual, age in ((True, 30_000), (False, 300_000)):
        ingest = KafkaIngest("127.0.0.1:9", [TOPIC], "g", "dlq", manual_assignment=manual)
        assert ingest.consumer._client._metadata_max_age_ms == age
        await ingest.consumer.stop()
        await ingest.producer.stop()


async def test_a_partition_added_while_another_is_being_restored_leaves_that_restore_running(tmp_path) -> None:
    """A fleet member told of an added partition restores it beside the running restore, then consumes both."""
    service, log = slow_service(tmp_path, slow=frozenset({0}))
    log.healed = True
    first, added = _tp(0), _tp(1)
    async with with_recording_consumer(service, [first, added]):
        await service._on_assigned([first])
        await log.reading.wait()
        await service._on_assigned([added])
        log.go.set()
        await asyncio.gather(*service._restorers.values())
        assert log.cancelled == []
        assert service.fleet is not None
        assert service.fleet.owned == {0, 1}
        assert service.ingest.held == set()


async def test_a_single_instance_consumes_an_added_partition_only_after_the_chunks_in_hand(
        tmp_path, monkeypatch) -> None:
    """A single instance holds an added partition until the chunk in hand finishes and the timeline is durable."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=[TOPIC],
                        kafka_manual_assignment=True)
    service = Service(settings, runbooks=[])
    real, consumer = service.ingest.consumer, _Consumer({0, 1}, [0], {0: 4})
    service.ingest.consumer = consumer  # type: ignore[assignment]

    async def nothing(consumer: Any, *partitions: Any, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        return {}

    monkeypatch.setattr(module, "getmany_past", nothing)
    try:
        lane, done = await chunk_in_hand(service._lock)
        polling = asyncio.create_task(service.ingest.poll())
        await asyncio.sleep(0.05)
        assert not polling.done()
        assert consumer.paused() == {_tp(1)}  # held: nothing of it is fetched while the chunk is in hand
        done.set()
        await asyncio.wait_for(polling, 10)  # a hang guard
        await lane
        assert consumer.paused() == set()
        assert consumer.seeks == {_tp(0): 4}
        assert service.ingest.held == set()
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()

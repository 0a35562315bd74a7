"""A consumer whose aiokafka group coordinator died is rebuilt in place (responder/service/consumers.py): nothing
is lost, `/readyz` says so meanwhile, and a manual assignment is not widened under a coordinator lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from responder.errors_kafka import CoordinatorDied
from responder.ingest.approvals import ApprovalIngest
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import TP, FakeBroker, FakeCoordinator, GroupConsumer, no_listener
from tests.fakes import FakeIam


async def test_an_alerts_consumer_whose_coordinator_died_is_rebuilt_and_loses_nothing(tmp_path) -> None:
    """An alerts consumer whose coordinator died is rebuilt from the committed offset and every record is handled."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=0)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    real = service.ingest.consumer
    broker = FakeBroker(records=7)
    first, second = GroupConsumer(broker, dies_after=2), GroupConsumer(broker)
    unready: list[str | None] = []
    second.on_start = lambda: unready.append(service.unready())
    service.ingest.consumer = first  # type: ignore[assignment]
    service.ingest._make = lambda: second  # type: ignore[assignment,method-assign]
    handled: list[int] = []
    prepare = service.pipeline.prepare_batch

    def prepare_batch(records: Any) -> Any:
        records = list(records)
        handled.extend(r.offset for r in records)
        return prepare(records)

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        pass  # an unknown shape: dead-lettered, handled all the same

    handle = service.pipeline.handle

    async def handle_one(record: RawRecord) -> Any:  # the path taken instead while a tracer is active (an earlier
        handled.append(record.offset)  # test in the same process may have set one)
        return await handle(record)

    service.pipeline.prepare_batch = prepare_batch  # type: ignore[method-assign]
    service.pipeline.handle = handle_one  # type: ignore[method-assign]
    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    try:
        first.subscribe(["a"], service.ingest._listener)
        await first.start()  # joined: partition 0 assigned, its state recovered
        service.ready.set()
        with capture_logs() as logs:
            async def until_all_committed() -> None:
                while broker.committed < len(broker.log):
                    await asyncio.sleep(0.01)
                service._stop.set()

            await asyncio.wait_for(asyncio.gather(service._alerts_loop(), until_all_committed()), 10)  # hang guard
        assert first.stopped  # the dead one closed
        assert second.started  # a new one joined
        assert set(handled) == set(range(7))  # nothing lost (some handled twice: at-least-once)
        assert broker.committed == 7
        assert "rebuilding the alerts consumer" in str(unready)
        events = [e["event"] for e in logs]
        assert "kafka_consumer_rebuilding" in events
        assert "kafka_consumer_rebuilt" in events
        assert service.metrics.value("responder_consumer_rebuilds_total", consumer="alerts") == 1
        assert service.unready() == "stopping"
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()


async def test_an_operator_consumer_whose_coordinator_died_raises_coordinator_died_then_is_rebuilt() -> None:
    """A signed-records consumer's poll raises CoordinatorDied; `rebuild` replaces it from the committed offset."""
    ingest = ApprovalIngest("127.0.0.1:1", "a", "g.operator")
    real = ingest.consumer
    broker = FakeBroker(records=3)
    first, second = GroupConsumer(broker, dies_after=1), GroupConsumer(broker)
    for fake in (first, second):
        fake.subscribe(["a"], type("L", (), {"on_partitions_assigned": staticmethod(no_listener)})())
    ingest.consumer = first  # type: ignore[assignment]
    ingest._make = lambda: second  # type: ignore[assignment,method-assign]
    try:
        await first.start()
        assert [r.offset for r in (await ingest.poll())[TP]] == [0, 1]
        with pytest.raises(CoordinatorDied, match="the a consumer's group coordinator died: KafkaError"):
            await ingest.poll()
        await ingest.commit({TP: 2})
        assert broker.committed == 0  # skipped (the next consumer reads them again), not raised
        await ingest.rebuild(deadline=1.0)
        assert first.stopped
        assert ingest.consumer is second
        assert second.started
        assert [r.offset for r in (await ingest.poll())[TP]] == [0, 1]  # again, from the committed offset
    finally:
        await real.stop()


class _Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}


class _Manual:
    """A manually assigned consumer that has assigned nothing yet (its topic was not in its metadata at start)."""

    def __init__(self) -> None:
        self._coordinator = FakeCoordinator()
        self._client = type("C", (), {"cluster": _Cluster()})()
        self._subscription = type("S", (), {"subscription": None})()
        self.assigned: list[list[TopicPartition]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned[-1]) if self.assigned else set()

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned.append(list(tps))

    def paused(self) -> set[TopicPartition]:
        return set()


async def test_a_manual_assignment_is_not_widened_while_the_group_coordinator_is_unknown() -> None:
    """A manual assignment adds the topic's new partitions only once the group coordinator is known."""
    ingest = ApprovalIngest("127.0.0.1:1", "ops", "g.operator", manual_assignment=True)
    real = ingest.consumer
    fake = _Manual()
    ingest.consumer = fake  # type: ignore[assignment]
    try:
        fake._coordinator.coordinator_id = None  # a broker down: the lookup is under way
        ingest._widen()
        assert fake.assigned == []
        fake._coordinator.coordinator_id = 2
        ingest._widen()
        assert fake.assigned == [[TopicPartition("ops", p) for p in (0, 1, 2)]]
    finally:
        await real.stop()


async def test_a_manual_assignment_is_not_widened_while_the_coordination_task_waits_for_the_lookup_lock() -> None:
    """A manual assignment is not widened until the coordinator lookup lock is free with no task waiting on it."""
    ingest = ApprovalIngest("127.0.0.1:1", "ops", "g.operator", manual_assignment=True)
    real = ingest.consumer
    fake = _Manual()
    lock = asyncio.Lock()
    fake._coordinator._coordinator_lookup_lock = lock  # type: ignore[attr-defined]
    ingest.consumer = fake  # type: ignore[assignment]
    try:
        await lock.acquire()  # a commit's lookup
        waiting = asyncio.create_task(lock.acquire())  # the coordination task's own lookup, behind it
        await asyncio.sleep(0)
        fake._coordinator.coordinator_id = 2  # found by the commit's lookup
        lock.release()  # the coordination task is woken, not run yet
        ingest._widen()
        assert fake.assigned == []
        await waiting  # it runs: sees the coordinator known, returns
        lock.release()
        ingest._widen()
        assert fake.assigned == [[TopicPartition("ops", p) for p in (0, 1, 2)]]
    finally:
        await real.stop()

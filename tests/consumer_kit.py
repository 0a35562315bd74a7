"""aiokafka's group consumers without Kafka: one partition's log and committed offset shared by the consumers built over
it (`FakeBroker`, `GroupConsumer`, whose coordinator dies after some polls; `JoinedConsumer`), an assignment-only
consumer, a moving clock, a fleet's recorded transactions, and a service whose alerts consumers are such fakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import Subscription
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from responder.ingest.coordinator import RebuildBudget, coordinator_death
from responder.service import Service
from responder.settings import Settings
from tests.fakes import FakeIam

TP = TopicPartition("a", 0)


class FakeCoordinator:
    """aiokafka's group coordinator as `coordinator_death` sees it: its coordination task and `_closing`."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._coordination_task: asyncio.Future[None] = loop.create_future()
        self._closing: asyncio.Future[None] = loop.create_future()
        self.coordinator_id: int | None = 1

    def die(self) -> None:
        self._coordination_task.set_exception(KafkaError("Unexpected error during coordination AssertionError()"))


class FakeBroker:
    """One partition's log and the group's committed offset, shared by the consumers built over it."""

    def __init__(self, records: int) -> None:
        self.log = [ConsumerRecord("a", 0, n, 0, 0, b"k", b'{"x": 1}', None, 1, 8, ()) for n in range(records)]
        self.committed = 0


class GroupConsumer:
    """A group consumer over `FakeBroker`: joins at `start` (the listener is told of partition 0), reads from the
    committed offset, two records a poll; its coordinator dies after `dies_after` polls."""

    def __init__(self, broker: FakeBroker, dies_after: int | None = None) -> None:
        self.broker, self.dies_after, self.polls = broker, dies_after, 0
        self._coordinator = FakeCoordinator()
        self._subscription = type("S", (), {"subscription": None})()
        self.listener: Any = None
        self.position = 0
        self.started = self.stopped = False
        self.on_start: Any = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The metadata: the one partition, which this member is given."""
        return {TP.partition} if topic == TP.topic else None

    async def start(self) -> None:
        if self.on_start is not None:
            self.on_start()
        self.started = True
        self.position = self.broker.committed
        await self.listener.on_partitions_assigned({TP})

    async def stop(self) -> None:
        self.stopped = True
        self._coordinator._closing.set_result(None)

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if coordinator_death(self) is not None:  # aiokafka's check_errors, for good
            raise KafkaError("Unexpected error during coordination AssertionError()")
        self.polls += 1
        if self.polls == self.dies_after:
            self._coordinator.die()
        await asyncio.sleep(0)
        got = self.broker.log[self.position:self.position + 2]
        self.position += len(got)
        return {TP: got} if got else {}

    async def commit(self, offsets: dict[Any, int]) -> None:
        if coordinator_death(self) is not None:
            raise KafkaError("Unexpected error during coordination AssertionError()")
        self.broker.committed = max(self.broker.committed, offsets[TP])

    def assignment(self) -> set[TopicPartition]:
        return {TP} if self.started and not self.stopped else set()

    def paused(self) -> set[TopicPartition]:
        return set()

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.broker.log)

    pause = resume = staticmethod(lambda *tps: None)  # backpressure and holds: nothing to fetch less here


async def no_listener(partitions: Any) -> None:
    """A rebalance callback that does nothing."""
    return None


class AssignmentConsumer:
    """What KafkaIngest asks of aiokafka's consumer besides polling: the assignment, pause and resume."""

    def __init__(self) -> None:
        self.assigned = {TP}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The metadata: the assigned partitions of `topic` (no other member holds any)."""
        return {tp.partition for tp in self.assigned if tp.topic == topic} or None

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass

    def paused(self) -> set[TopicPartition]:
        return set()

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


class MovingClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def alerts_over(tmp_path: Path, budget: Callable[[], RebuildBudget],
                      make: Callable[[Service], Callable[[], GroupConsumer]]) -> AsyncIterator[Service]:
    """A service (offsets committed at once) whose alerts consumers are fakes from `make(service)`, each rebuild's
    budget from `budget()`, the first one joined, ready; closed at the end."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=0)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    service.rebuild_budget = budget  # type: ignore[method-assign]
    real = service.ingest.consumer

    async def deadletter(*args: Any) -> None:
        pass  # an unknown shape: dead-lettered, handled all the same

    factory = make(service)
    first = factory()
    service.ingest.consumer = first  # type: ignore[assignment]
    service.ingest._make = factory  # type: ignore[assignment,method-assign]
    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    try:
        first.subscribe(["a"], service.ingest._listener)
        await first.start()
        service.ready.set()
        yield service
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()


async def stop_when(service: Service, done: Callable[[], bool]) -> None:
    """Ask `service` to stop once `done()`."""
    while not done():
        await asyncio.sleep(0.01)
    service._stop.set()


class FakeCluster:
    """aiokafka's client as the watchdog's probe asks it: answers while `answers()`, else raises as with no broker up
    (or, `hangs`, never returns); `asked` counts the probes."""

    def __init__(self, answers: Callable[[], bool] = lambda: True, *, hangs: bool = False) -> None:
        self.answers, self.hangs, self.asked = answers, hangs, 0

    async def fetch_all_metadata(self) -> object:
        self.asked += 1
        if not self.answers():
            await (asyncio.Event().wait() if self.hangs else asyncio.sleep(0))  # a partition: the probe times out
            raise KafkaError("Unable to get cluster metadata over all known brokers")
        return object()


class JoinedConsumer(GroupConsumer):
    """A `GroupConsumer` that aiokafka's own subscription state shows joined once started (partition 0 assigned, its
    position where it reads), its coordinator found unless `found` is False; each poll moves `clock` on 10 s; its
    cluster (`_client`) answers the watchdog's probe unless `cluster` says otherwise."""

    def __init__(self, broker: FakeBroker, clock: MovingClock, dies_after: int, *, found: bool = True,
                 cluster: FakeCluster | None = None) -> None:
        super().__init__(broker, dies_after)
        self.clock = clock
        self._client = cluster or FakeCluster()
        self._coordinator.coordinator_id = 1 if found else None
        self._subscription = type("S", (), {"subscription": None, "reassignment_in_progress": True})()

    async def start(self) -> None:
        self.joined_at = self.clock.now
        await super().start()
        subscription = Subscription(["a"])
        subscription._assign({TP})
        subscription.assignment.state_value(TP).reset_to(self.position)
        self._subscription = type("S", (), {"subscription": subscription, "reassignment_in_progress": False})()

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self.clock.now += 10
        got = await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)
        self._subscription.subscription.assignment.state_value(TP).consumed_to(self.position)
        return got


class RecordedTxn:
    """A fleet's changelog transactions: `commit(offsets)` records the offsets committed with them."""

    def __init__(self) -> None:
        self.committed: list[dict[Any, int]] = []

    @contextlib.contextmanager
    def hold(self, partitions: Any) -> Iterator[None]:
        yield

    async def commit(self, offsets: dict[Any, int]) -> bool:
        self.committed.append(dict(offsets))
        return bool(offsets)

    async def stop(self) -> None:
        pass


def fleet_with_txn(tmp_path: Path) -> tuple[Service, RecordedTxn]:
    """A fleet replica's service (unstarted) owning `TP`, its changelog transactions recorded (`RecordedTxn`)."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, aws=FakeIam(), runbooks=[])
    assert service.fleet is not None
    service.fleet.changelog.txn = txn = RecordedTxn()  # type: ignore[assignment]
    service.fleet.owned.add(TP.partition)
    return service, txn

"""Rebuilt consumers without Kafka: a service's operator loop run over fake consumers until rebuilt enough times, the
rebuild count and logged causes, the service's own rebuild budget on a moving clock, and consumers that lose their
group coordinator while their task goes on looking (in a poll, or in a commit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from responder.ingest.coordinator import REBUILDS, WINDOW_S, RebuildBudget
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import (
    FakeBroker,
    FakeCluster,
    GroupConsumer,
    JoinedConsumer,
    MovingClock,
    no_listener,
    stop_when,
)
from tests.fakes import FakeIam

BOUND = 160.0  # the default settings' start bound: 30 s connect + 10 s session + 120 s rebalance


def rebuilds(service: Service, consumer: str) -> float:
    """How many times the service rebuilt `consumer` (its metric)."""
    return service.metrics.value("responder_consumer_rebuilds_total", consumer=consumer)


def service_budget(clock: MovingClock) -> Callable[[], RebuildBudget]:
    """The service's own budget (its window holds five starts that time out), on `clock`, without backoff."""
    return lambda: RebuildBudget(clock, window=max(WINDOW_S, REBUILDS * (BOUND + 30.0)), backoff=0.0, backoff_max=0.0)


def rebuilding_errors(logs: list[dict[str, Any]]) -> list[str]:
    """The errors of the `kafka_consumer_rebuilding` lines in `logs`."""
    return [e["error"] for e in logs if e["event"] == "kafka_consumer_rebuilding"]


async def operator_over(tmp_path: Any, make: Callable[[], GroupConsumer], clock: MovingClock, until: int,
                        done: Callable[[Service], bool] = lambda service: False,
                        budget: Callable[[], RebuildBudget] | None = None) -> Service:
    """Run a service's operator loop over consumers from `make()` (budgets from `budget()`, by default without
    backoff on `clock`) until the consumer was rebuilt `until` times or `done(service)` (then stopped), or it raised."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"])
    service = Service(settings, aws=FakeIam(), runbooks=[])
    service.rebuild_budget = budget or (  # type: ignore[method-assign]
        lambda: RebuildBudget(clock, backoff=0.0, backoff_max=0.0))
    ingest = service.operator_ingest
    assert ingest is not None
    real = ingest.consumer

    def one() -> GroupConsumer:
        fake = make()
        fake.subscribe(["a"], type("L", (), {"on_partitions_assigned": staticmethod(no_listener)})())
        return fake

    ingest.consumer = first = one()  # type: ignore[assignment]
    ingest._make = one  # type: ignore[assignment,method-assign]
    try:
        await first.start()
        service.ready.set()
        stop = stop_when(service, lambda: rebuilds(service, "operator") >= until or done(service))
        await asyncio.wait_for(asyncio.gather(service._operator_loop(ingest), stop), 10)  # hang guard
        return service
    finally:
        await real.stop()
        service.recorder.close()
        await service.close_unstarted()


class LosingConsumer(JoinedConsumer):
    """A joined alerts consumer whose coordinator is marked dead after `lose_after` polls (a heartbeat session
    expired), its task looking for it for ever: it keeps its partition and reads on, and its commits wait for ever
    (aiokafka's `ensure_coordinator_known`)."""

    def __init__(self, broker: FakeBroker, clock: MovingClock, lose_after: int,
                 cluster: FakeCluster | None = None) -> None:
        super().__init__(broker, clock, dies_after=0, cluster=cluster)
        self.lose_after = lose_after

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if self.polls + 1 == self.lose_after:
            self._coordinator.coordinator_id = None
        return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)

    async def commit(self, offsets: dict[Any, int]) -> None:
        if self._coordinator.coordinator_id is None:
            await asyncio.Event().wait()
        await super().commit(offsets)


class LosingInCommit(LosingConsumer):
    """A `LosingConsumer` whose commit waits for the lost coordinator for ever, 10 s going by every 10 ms."""

    async def commit(self, offsets: dict[Any, int]) -> None:
        while self._coordinator.coordinator_id is None:
            self.clock.now += 10
            await asyncio.sleep(0.01)
        await super().commit(offsets)

"""A quiet consumer rebuilt once per broker of a rolling restart keeps running; one that never settles after its
rebuilds (its coordinator never found, or lost before it joined) still stops the service (responder/service/
consumers.py, `caught_up` and `RebuildBudget` in responder/ingest/coordinator.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.errors_kafka import ConsumerRebuildsExhausted
from responder.ingest.coordinator import RebuildBudget, caught_up
from responder.ingest.raw import to_raw
from responder.service import Service
from tests.consumer_kit import (
    TP,
    FakeBroker,
    GroupConsumer,
    JoinedConsumer,
    MovingClock,
    alerts_over,
    fleet_with_txn,
    no_listener,
    stop_when,
)
from tests.rebuild_kit import operator_over, rebuilds


async def test_a_quiet_operator_consumer_outlives_a_fast_rolling_restart_of_the_brokers(tmp_path) -> None:
    """A quiet operator consumer whose coordinator dies 30 s after each of 8 rebuilds in 4 minutes runs on."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[JoinedConsumer] = []

    def one() -> JoinedConsumer:  # the first and 7 rebuilt ones lose their coordinator; the one built after it does not
        built.append(JoinedConsumer(broker, clock, dies_after=3 if len(built) < 8 else 0))
        return built[-1]

    service = await operator_over(tmp_path, one, clock, until=99, done=lambda _: len(built) > 8 and built[8].polls > 2)
    assert rebuilds(service, "operator") == 8
    assert built[-1].polls > 0  # the last one polls on
    assert built[-1].joined_at - 100 == 8 * 30  # all 8 deaths within one window (600 s)


@pytest.mark.parametrize("found", [True, False], ids=["dies-before-joining", "coordinator-never-found"])
async def test_an_operator_consumer_that_never_settles_after_its_rebuilds_stops_the_service(tmp_path,
                                                                                          found: bool) -> None:
    """Rebuilt consumers that die at their first poll, or never find their coordinator, end in exit 75."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    with pytest.raises(ConsumerRebuildsExhausted, match="operator consumer was rebuilt 5 times"):
        await operator_over(tmp_path, lambda: JoinedConsumer(broker, clock, dies_after=1 if found else 8, found=found),
                             clock, until=12)


async def test_a_quiet_alerts_consumer_outlives_a_rolling_restart_and_handles_an_alert_sent_after(tmp_path) -> None:
    """A quiet alerts consumer rebuilt 8 times in 4 minutes runs on and commits an alert sent afterwards."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[JoinedConsumer] = []

    def make(service: Service) -> Callable[[], GroupConsumer]:
        # the first and 7 rebuilt ones lose their coordinator; the one built after it does not
        def one() -> GroupConsumer:
            built.append(JoinedConsumer(broker, clock, dies_after=3 if len(built) < 8 else 0))
            return built[-1]
        return one

    async with alerts_over(tmp_path, lambda: RebuildBudget(clock, backoff=0.0, backoff_max=0.0), make) as service:
        def sent_after_the_restarts() -> bool:
            if rebuilds(service, "alerts") >= 8 and not broker.log:
                broker.log.extend(FakeBroker(records=1).log)
            return broker.committed == 1

        await asyncio.wait_for(asyncio.gather(  # hang guard
            service._alerts_loop(), stop_when(service, sent_after_the_restarts)), 10)
        assert rebuilds(service, "alerts") == 8
        assert broker.committed == 1


async def test_caught_up_needs_the_coordinator_the_assignment_and_the_high_watermark() -> None:
    """`caught_up` only once joined, its coordinator known and its partition read to the high watermark."""
    clock, broker = MovingClock(), FakeBroker(records=1)
    fake = JoinedConsumer(broker, clock, dies_after=0)
    fake.subscribe(["a"], type("L", (), {"on_partitions_assigned": staticmethod(no_listener)})())
    assert not caught_up(fake)  # not joined
    await fake.start()
    assert not caught_up(fake)  # a record to read
    await fake.getmany(TP, timeout_ms=0, max_records=2)
    assert caught_up(fake)
    fake._coordinator.coordinator_id = None
    assert not caught_up(fake)


async def test_an_operator_consumer_that_dies_each_time_after_it_caught_up_still_stops_the_service(tmp_path) -> None:
    """Rebuilt consumers that each catch up, then lose their coordinator 10 s later, end in exit 75 at the ceiling."""
    clock, broker = MovingClock(), FakeBroker(records=0)
    with pytest.raises(ConsumerRebuildsExhausted, match="operator consumer was rebuilt 20 times within 600 s") as got:
        await operator_over(tmp_path, lambda: JoinedConsumer(broker, clock, dies_after=2), clock, until=40)
    assert "each settling" in str(got.value)


class _Waits(JoinedConsumer):
    """A `JoinedConsumer` whose 50th poll waits for `go` (the test looks at the service meanwhile)."""

    def __init__(self, broker: FakeBroker, clock: MovingClock) -> None:
        super().__init__(broker, clock, dies_after=0, found=False)
        self.go, self.waiting = asyncio.Event(), False

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if self.polls == 49:
            self.waiting = True
            await self.go.wait()
        return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)


async def test_a_rebuilt_operator_consumer_that_never_finds_its_coordinator_is_named_by_readyz(tmp_path,
                                                                                           monkeypatch) -> None:
    """`/readyz` is 503 naming a rebuilt operator consumer that has not found its coordinator, then ready."""
    monkeypatch.setattr(Service, "start_timeout", lambda self: 3600.0)  # not rebuilt again (test_stuck_consumer.py)
    clock, broker = MovingClock(), FakeBroker(records=0)
    built: list[JoinedConsumer] = []
    said: list[str | None] = []

    # the first loses its coordinator; the rebuilt one looks for it, in vain, then finds it
    def one() -> JoinedConsumer:
        built.append(JoinedConsumer(broker, clock, dies_after=3) if not built else _Waits(broker, clock))
        return built[-1]

    def looked(service: Service) -> bool:
        waits = built[1] if len(built) > 1 and isinstance(built[1], _Waits) else None
        if waits is None or not waits.waiting or waits.polls < (49 if not said else 53):
            return False
        if not said:
            said.append(service.unready())
            waits._coordinator.coordinator_id = 1  # found at last
            waits.go.set()
            return False
        said.append(service.unready())
        return True

    await operator_over(tmp_path, one, clock, until=2, done=looked)
    assert "the operator consumer, rebuilt after its group coordinator died, has not settled" in str(said[0])
    assert said[1] is None


async def test_a_fleet_replicas_offsets_committed_in_a_transaction_are_its_alerts_consumers_progress(tmp_path) -> None:
    """Offsets committed with a fleet's changelog transaction count as the alerts consumer's commits (progress)."""
    service, txn = fleet_with_txn(tmp_path)

    async def deadletter(*args: Any) -> None:
        pass  # an unknown shape: dead-lettered, handled all the same

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    try:
        await service._handle_chunk({TP: [to_raw(r) for r in FakeBroker(records=2).log]})
        assert txn.committed == [{TP: 2}]
        assert service.ingest.commits == 1
    finally:
        service.recorder.close()
        await service.close_unstarted()

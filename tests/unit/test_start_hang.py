"""A consumer's start that never returns (aiokafka waits for a group assignment without a timeout: its coordinator
never found) is bounded and ended by a stop request, at a rebuild and at the service's start
(responder/service/starts.py, responder/service/consumers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors_kafka import ConsumerRebuildsExhausted
from responder.ingest.coordinator import RebuildBudget
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import FakeBroker, GroupConsumer, alerts_over
from tests.fakes import FakeIam


class _Hangs(GroupConsumer):
    """A group consumer whose `start()` never returns, as aiokafka's while its group coordinator is never found;
    `built` holds every consumer made, to check none is open beside the next."""

    def __init__(self, broker: FakeBroker, built: list[GroupConsumer]) -> None:
        super().__init__(broker)
        assert all(older.stopped for older in built), "a consumer still open beside its replacement"
        built.append(self)

    async def start(self) -> None:
        self.started = True
        await asyncio.Event().wait()


def _hanging(broker: FakeBroker, built: list[GroupConsumer]) -> Callable[[Service], Callable[[], GroupConsumer]]:
    """The alerts consumers: the first dies after its first poll, every one rebuilt after it hangs in `start()`."""
    def make(service: Service) -> Callable[[], GroupConsumer]:
        def one() -> GroupConsumer:
            if not built:
                built.append(GroupConsumer(broker, dies_after=1))
                return built[0]
            return _Hangs(broker, built)
        return one
    return make


def _no_backoff() -> RebuildBudget:
    return RebuildBudget(backoff=0.0, backoff_max=0.0)


async def _entered(built: list[GroupConsumer], count: int) -> None:
    """Until the `count`th consumer's start is under way."""
    while len(built) < count or not built[count - 1].started:
        await asyncio.sleep(0.01)


async def test_a_rebuild_whose_start_never_returns_times_out_and_counts_until_the_service_stops(tmp_path) -> None:
    """Rebuilt consumers hanging in `start()` are closed at the bound, ending in ConsumerRebuildsExhausted (exit 75)."""
    broker, built = FakeBroker(records=2), []
    async with alerts_over(tmp_path, _no_backoff, _hanging(broker, built)) as service:
        service.start_timeout = lambda: 0.05  # type: ignore[method-assign]
        with capture_logs() as logs, pytest.raises(ConsumerRebuildsExhausted) as raised:
            await asyncio.wait_for(service._alerts_loop(), 10)  # hang guard
    assert "the alerts consumer was rebuilt 5 times" in str(raised.value)
    assert "its start timed out again (TimeoutError: not started within 0.05 s" in str(raised.value)
    assert len(built) == 6
    assert all(consumer.stopped for consumer in built)
    assert service.metrics.value("responder_consumer_rebuilds_total", consumer="alerts") == 5
    assert [e["event"] for e in logs].count("kafka_consumer_start_timed_out") == 5


async def test_a_stop_request_ends_a_rebuilds_start_that_never_returns_committing_nothing(tmp_path) -> None:
    """`request_stop` during a rebuilt consumer's hung `start()` cancels it and ends the alerts loop uncommitted."""
    broker, built = FakeBroker(records=2), []
    async with alerts_over(tmp_path, _no_backoff, _hanging(broker, built)) as service:
        committed = broker.committed
        with capture_logs() as logs:
            loop = asyncio.create_task(service._alerts_loop())
            await asyncio.wait_for(_entered(built, 2), 10)
            assert service.unready() is not None
            assert service.unready().startswith("rebuilding the alerts consumer")
            service.request_stop()
            await asyncio.wait_for(loop, 2)  # the usual shutdown, not the 160 s bound
    assert len(built) == 2
    assert built[1].stopped
    assert broker.committed == committed
    events = [e["event"] for e in logs]
    assert "kafka_consumer_start_stopped" in events
    assert "kafka_consumer_rebuilt" not in events


async def _first_start(tmp_path: Any, run: Callable[[Service, list[GroupConsumer]], Any]) -> Service:
    """A service whose alerts consumers all hang in `start()` from its first start on (the publisher and approvals
    start at once), `run(service, built)` over it; closed at the end."""
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               dry_run=True), aws=FakeIam(), runbooks=[])
    real, built = service.ingest.consumer, []

    async def nothing(wait: float, **_: Any) -> None:  # it is told what sets its wait
        return None

    async def started() -> None:
        return None

    service.ingest._make = lambda: _Hangs(FakeBroker(records=0), built)  # type: ignore[assignment,method-assign]
    service.ingest.consumer = service.ingest._make()  # type: ignore[assignment]
    service.publisher.start = service.approvals.start = nothing  # type: ignore[method-assign]
    service.ingest.producer.start = started  # type: ignore[method-assign]  # no broker: its producer "starts"
    try:
        await run(service, built)
        return service
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()


async def test_a_stop_request_ends_a_first_start_whose_group_coordinator_is_never_found(tmp_path) -> None:
    """`request_stop` ends at once a first alerts consumer start that hangs; the consumer is closed, never ready."""
    async def run(service: Service, built: list[GroupConsumer]) -> None:
        starting = asyncio.create_task(service._consume_until_stopped())
        await asyncio.wait_for(_entered(built, 1), 10)
        service.request_stop()
        await asyncio.wait_for(starting, 2)
        assert built[0].stopped
        assert len(built) == 1
        assert not service.ready.is_set()

    await _first_start(tmp_path, run)


async def test_a_first_start_that_never_returns_is_rebuilt_until_the_service_stops_with_exit_75(tmp_path) -> None:
    """A first start that hangs is rebuilt, and after 5 rebuilds it ends in ConsumerRebuildsExhausted, each closed."""
    async def run(service: Service, built: list[GroupConsumer]) -> None:
        service.start_timeout = lambda: 0.05  # type: ignore[method-assign]
        service.rebuild_budget = _no_backoff  # type: ignore[method-assign]
        with pytest.raises(ConsumerRebuildsExhausted, match="alerts consumer was rebuilt 5 times"):
            await asyncio.wait_for(service._consume_until_stopped(), 10)  # hang guard
        assert len(built) == 6
        assert all(consumer.stopped for consumer in built)
        assert not service.ready.is_set()

    await _first_start(tmp_path, run)


async def test_readyz_says_a_rebuild_after_a_start_that_timed_out_is_not_a_dead_coordinator(tmp_path) -> None:
    """While a consumer whose start timed out is rebuilt, `/readyz` says so, not that its coordinator died."""
    broker, built = FakeBroker(records=2), []
    async with alerts_over(tmp_path, _no_backoff, _hanging(broker, built)) as service:
        service.start_timeout = lambda: 0.2  # type: ignore[method-assign]
        loop = asyncio.create_task(service._alerts_loop())
        await asyncio.wait_for(_entered(built, 3), 10)  # the second consumer's start timed out, the third's under way
        why = service.unready() or ""
        service.request_stop()
        await asyncio.wait_for(loop, 2)
    assert why.startswith("rebuilding the alerts consumer: its start timed out (TimeoutError: not started within")
    assert "coordinator died" not in why
